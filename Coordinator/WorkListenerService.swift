import Logging
import PostgresNIO
import ServiceLifecycle

/// Holds one connection in LISTEN on the work channel: each notification wakes those it concerns (`WorkSignals`), and a
/// `revoke:<job>` one also revokes that job's leases held through this coordinator.
struct WorkListenerService: Service {
    var client: PostgresClient
    var signals: WorkSignals
    var leases: ActiveLeases
    var logger: Logger

    func run() async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: JobStore.workChannel) { notifications in
                        for try await notification in notifications {
                            self.revokeIfAsked(notification.payload)
                            self.signals.notify(WorkSignals.audience(ofNotification: notification.payload))
                        }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("LISTEN connection lost; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func revokeIfAsked(_ payload: String) {
        guard payload.hasPrefix(JobStore.revokePrefix),
            let jobID = Int64(payload.dropFirst(JobStore.revokePrefix.count))
        else { return }
        let revoked = self.leases.revoke(jobID: jobID, reason: "job \(jobID) ended (cancelled or failed)")
        if revoked > 0 {
            self.logger.info(
                "revoked the leases of an ended job",
                metadata: ["job": "\(jobID)", "leases": "\(revoked)"]
            )
        }
    }
}
