import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// A job's poster and thumbnails, made on a coordinator while the agents encode (`ThumbnailService`), so the stitch
/// after the last task is only checks, playlists and renames.
extension JobStore {
    /// Claims one planned job whose thumbnails are not made yet (or whose last claim lapsed: its coordinator died),
    /// most urgent job first, for `claimSeconds`.
    package func claimThumbnails(claimSeconds: Double) async throws -> JobForThumbnails? {
        let rows = try await self.client.query(
            """
            UPDATE jobs j SET thumbnails_claimed_until = now() + make_interval(secs => \(claimSeconds))
            WHERE j.id = (
                SELECT id FROM jobs
                WHERE state IN (\(JobState.running), \(JobState.stitching)) AND NOT thumbnails_done
                  AND (thumbnails_claimed_until IS NULL OR thumbnails_claimed_until < now())
                ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1
            )
            RETURNING j.id, j.source, j.output_dir, j.source_info,
                (SELECT r.width FROM renditions r WHERE r.job_id = j.id ORDER BY r.height DESC LIMIT 1)
            """,
            logger: self.logger
        )
        for try await (id, source, output, info, topWidth) in rows.decode(
            (Int64, String, String, JobSourceInfo, Int?).self
        ) {
            return JobForThumbnails(
                id: id,
                source: source,
                outputDirectory: output,
                sourceInfo: info,
                topRenditionWidth: topWidth
            )
        }
        return nil
    }

    /// Records that the job's thumbnails are in its folder and wakes the stitchers. False when the job ended
    /// meanwhile (cancelled, or failed by another part): the caller removes what it wrote.
    package func finishThumbnails(jobID: Int64) async throws -> Bool {
        try await self.client.withTransaction(logger: self.logger) { connection in
            let rows = try await connection.query(
                """
                UPDATE jobs SET thumbnails_done = true, thumbnails_claimed_until = NULL
                WHERE id = \(jobID) AND state IN (\(JobState.running), \(JobState.stitching)) RETURNING id
                """,
                logger: self.logger
            )
            var stillRunning = false
            for try await _ in rows.decode(Int64.self) { stillRunning = true }
            if stillRunning { try await self.notifyWork("thumbnails", on: connection) }
            return stillRunning
        }
    }

    /// Fails a job whose thumbnails could not be made: it never becomes ready without them.
    package func failThumbnails(jobID: Int64, error: String) async throws {
        try await self.client.withTransaction(logger: self.logger) { connection in
            _ = try await self.failJob(jobID, error: error, on: connection)
        }
    }
}

/// What making a job's thumbnails needs.
package struct JobForThumbnails: Sendable {
    package var id: Int64
    package var source: String
    package var outputDirectory: String
    package var sourceInfo: JobSourceInfo
    /// The poster is no wider than the top rung.
    package var topRenditionWidth: Int?
}
