import Logging
import NIOPosix
import ServiceLifecycle

/// Rewrites the progressive playlists of the jobs `ProgressPublisher` marks (`ProgressivePlaylists.write`, under
/// the job's playlist lock in `JobStore.publishProgress`).
struct ProgressPlaylistsService: Service {
    var publisher: ProgressPublisher
    var store: JobStore
    var logger: Logger

    func run() async {
        await self.publisher.run { jobID in
            do {
                try await self.store.publishProgress(jobID: jobID) { progress in
                    try await NIOThreadPool.singleton.runIfActive { try ProgressivePlaylists.write(progress) }
                }
            } catch {
                // The next result's rewrite, or the stitch, brings the playlists up to date.
                self.logger.warning(
                    "could not update the job's progressive playlists",
                    metadata: ["job": "\(jobID)", "error": "\(error)"]
                )
            }
        }
    }
}
