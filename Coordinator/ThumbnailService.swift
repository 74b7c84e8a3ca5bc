import Logging
import NIOPosix
import ServiceLifecycle

/// Makes the poster and thumbnails of running jobs (`JobThumbnails.write`) from the moment they are planned, beside
/// the agents' encoding, so nothing slow is left for after the last task. A job whose thumbnails cannot be made fails
/// with the reason; the stitch of a job waits for them.
struct ThumbnailService: Service {
    var store: JobStore
    var rounds: RecurringRounds
    /// How long a claim holds a job: past it (its coordinator died) another coordinator makes them. One that is
    /// merely slow is then done twice, to the same bytes.
    var claimSeconds: Double = 300

    func run() async {
        await self.rounds.run {
            while let job = try await self.store.claimThumbnails(claimSeconds: self.claimSeconds) {
                let started = ContinuousClock.now
                do {
                    try await NIOThreadPool.singleton.runIfActive { try JobThumbnails.write(job) }
                } catch let failure as JobThumbnails.Failure {
                    try await self.store.failThumbnails(jobID: job.id, error: failure.description)
                    self.rounds.logger.error(
                        "job failed: no thumbnails",
                        metadata: ["job": "\(job.id)", "error": "\(failure)"]
                    )
                    continue
                }
                if try await self.store.finishThumbnails(jobID: job.id) {
                    self.rounds.logger.info(
                        "thumbnails made",
                        metadata: ["job": "\(job.id)", "seconds": "\(ContinuousClock.now - started)"]
                    )
                } else {
                    // The job ended meanwhile; its cleanup may already have run.
                    JobThumbnails.remove(from: job.outputDirectory)
                }
            }
        }
    }
}
