import Logging
import PostgresNIO
import ServiceLifecycle

/// Holds one connection in LISTEN on the work channel: each notification wakes those it concerns (`WorkSignals`), and a
/// `revoke:<job>` one also revokes that job's leases held through this coordinator, and a `drain:<agent>` one tells
/// that agent's sessions here to drain.
struct WorkListenerService: Service {
    var client: PostgresClient
    var signals: WorkSignals
    var leases: ActiveLeases
    var agents: ConnectedAgents
    var logger: Logger

    func run() async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: JobStore.workChannel) { notifications in
                        for try await notification in notifications {
                            self.revokeIfAsked(notification.payload)
                            self.drainIfAsked(notification.payload)
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

    /// `farm agents drain NAME`: the sessions of that agent held here are told to drain.
    private func drainIfAsked(_ payload: String) {
        guard payload.hasPrefix(JobStore.drainPrefix) else { return }
        let name = String(payload.dropFirst(JobStore.drainPrefix.count))
        let told = self.agents.drain(name: name)
        if told > 0 {
            self.logger.info("asked an agent to drain", metadata: ["agent": "\(name)", "sessions": "\(told)"])
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
