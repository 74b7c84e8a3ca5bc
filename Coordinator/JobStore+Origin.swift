import Foundation
import Logging
import PostgresNIO

/// What the HLS origin reads: a job's output folder, once the job is ready (and so its files are final).
extension JobStore {
    /// The output folder of job `jobID` if it is ready; nil for any other state, or no such job.
    package func readyOutputFolder(jobID: Int64) async throws -> String? {
        let rows = try await self.client.query(
            "SELECT output_dir FROM jobs WHERE id = \(jobID) AND state = \(JobState.ready)",
            logger: self.logger
        )
        for try await folder in rows.decode(String.self) { return folder }
        return nil
    }
}
