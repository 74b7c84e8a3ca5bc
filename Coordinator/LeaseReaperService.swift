import Logging
import ServiceLifecycle

/// Gives back the tasks of leases that expired (an agent died or froze): queued again after a backoff, or failed
/// with their job when out of attempts.
struct LeaseReaperService: Service {
    var store: JobStore
    var rounds: RecurringRounds

    func run() async {
        await self.rounds.run {
            let reaped = try await self.store.reapExpiredLeases()
            for lease in reaped {
                self.rounds.logger.warning(
                    "lease expired",
                    metadata: ["task": "\(lease.taskID)", "agent": "\(lease.agent)", "requeued": "\(lease.requeued)"]
                )
            }
            if !reaped.isEmpty { self.rounds.signals.notify(.everyone) }
        }
    }
}
