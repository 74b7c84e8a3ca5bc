import Logging
import NIOPosix
import ServiceLifecycle

/// Claims jobs whose every task is done and stitches them (`Stitcher.stitch`): checks, playlists, ready.
struct StitcherService: Service {
    var store: JobStore
    var rounds: RecurringRounds

    func run() async {
        await self.rounds.run {
            try await self.store.promoteFinishedJobs()
            while let (jobID, error) = try await self.store.stitchNextJob({ job in
                try await NIOThreadPool.singleton.runIfActive { try Stitcher.stitch(job) }
            }) {
                if let error {
                    self.rounds.logger.error(
                        "job failed while stitching",
                        metadata: ["job": "\(jobID)", "error": "\(error)"]
                    )
                } else {
                    self.rounds.logger.info("job ready", metadata: ["job": "\(jobID)"])
                }
            }
        }
    }
}
