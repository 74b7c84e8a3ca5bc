import Logging
import ServiceLifecycle

/// Plans submitted jobs, one transaction each: probe, plan, tasks (`JobStore.planNextJob`, `JobPlanning.plan`).
struct JobPlannerService: Service {
    var store: JobStore
    var rounds: RecurringRounds

    func run() async {
        await self.rounds.run {
            while let (jobID, error) = try await self.store.planNextJob({ job in try await JobPlanning.plan(job) }) {
                if let error {
                    self.rounds.logger.error(
                        "job failed while planning",
                        metadata: ["job": "\(jobID)", "error": "\(error)"]
                    )
                } else {
                    self.rounds.logger.info("job planned", metadata: ["job": "\(jobID)"])
                    self.rounds.signals.notify(.everyone)
                }
            }
        }
    }
}
