import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// Jobs whose tasks are all done, handed to the stitcher.
extension JobStore {
    /// Hands to the stitcher every running job whose tasks are all done. A completion does this itself when it
    /// sees no task left, but two last completions committed at once through two connections each see the other's
    /// task still leased; this sweep (each stitcher round) catches that case.
    @discardableResult
    package func promoteFinishedJobs() async throws -> Int {
        let rows = try await self.client.query(
            """
            UPDATE jobs j SET state = \(JobState.stitching), updated_at = now()
            WHERE j.state = \(JobState.running) AND EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id)
              AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id AND t.state <> \(TaskState.done))
            RETURNING j.id
            """,
            logger: self.logger
        )
        var promoted = 0
        for try await _ in rows.decode(Int64.self) { promoted += 1 }
        return promoted
    }

    /// Claims one job whose tasks are all done and thumbnails made, runs `stitch` while holding its row, then marks it ready, or failed
    /// with the stitcher's error. Returns the job's id and error, or nil when none waits.
    package func stitchNextJob(
        _ stitch: @Sendable (JobToStitch) async throws -> Void
    ) async throws -> (id: Int64, error: String?)? {
        try await self.client.withTransaction(logger: self.logger) { connection -> (id: Int64, error: String?)? in
            let rows = try await connection.query(
                """
                SELECT id, source, output_dir, source_info, settings FROM jobs
                WHERE state = \(JobState.stitching) AND thumbnails_done
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: (Int64, String, String, JobSourceInfo, JobSettings)?
            for try await row in rows.decode((Int64, String, String, JobSourceInfo, JobSettings).self) {
                claimed = row
            }
            guard let (jobID, source, output, info, settings) = claimed else { return nil }
            // One stitch at a time per job with the progressive playlists (`publishProgress`), so an EVENT playlist
            // written late never replaces the VOD one.
            try await Self.lockPlaylists(of: jobID, on: connection, logger: self.logger)
            let (renditions, segments, inits) = try await Self.acceptedOutputs(
                of: jobID,
                on: connection,
                logger: self.logger
            )
            let job = JobToStitch(
                id: jobID,
                source: source,
                outputDirectory: output,
                sourceInfo: info,
                renditions: renditions,
                segments: segments,
                initSegments: inits,
                container: settings.container,
                encoder: settings.encoder
            )
            do {
                try await stitch(job)
            } catch {
                let message = "stitching failed: \(error)"
                try await self.failJob(jobID, error: message, on: connection)
                return (jobID, message)
            }
            _ = try await connection.query(
                "UPDATE jobs SET state = \(JobState.ready), updated_at = now(), finished_at = now() WHERE id = \(jobID)",
                logger: self.logger
            )
            return (jobID, nil)
        }
    }

    /// The job's renditions (lowest first), its accepted segments (by rendition and number) and init segments.
    static func acceptedOutputs(
        of jobID: Int64,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> (renditions: [RenditionSpec], segments: [OutputFile], initSegments: [String: String]) {
        var renditions: [RenditionSpec] = []
        for try await (name, width, height, bitrate) in try await connection.query(
            "SELECT name, width, height, max_bitrate FROM renditions WHERE job_id = \(jobID) ORDER BY height",
            logger: logger
        ).decode((String, Int, Int, Int).self) {
            renditions.append(RenditionSpec(name: name, width: width, height: height, maxBitrate: bitrate))
        }
        var segments: [OutputFile] = []
        for try await (rendition, index, start, duration, num, den, frames, bytes, hash, path)
            in try await connection
            .query(
                """
                SELECT rendition, index, start_pts, duration, timebase_num, timebase_den, frames, bytes, sha256, path
                FROM segments WHERE job_id = \(jobID) ORDER BY rendition, index
                """,
                logger: logger
            ).decode((String, Int, Int64, Int64, Int, Int, Int, Int64, String, String).self)
        {
            segments.append(
                OutputFile(
                    rendition: rendition,
                    role: .segment,
                    segmentIndex: index,
                    path: path,
                    bytes: bytes,
                    sha256: hash,
                    startPTS: start,
                    duration: duration,
                    frames: frames,
                    timeBase: Rational(Int32(num), Int32(den))
                )
            )
        }
        var inits: [String: String] = [:]
        for try await (rendition, path) in try await connection.query(
            "SELECT rendition, path FROM init_segments WHERE job_id = \(jobID)",
            logger: logger
        ).decode((String, String).self) {
            inits[rendition] = path
        }
        return (renditions, segments, inits)
    }

    /// Serialises writers of one job's playlists across coordinators until the transaction ends (job ids share a
    /// lock when equal in their low 32 bits: a rare wait, never a wrong result). With `waiting` false it does not
    /// wait for another writer: it returns false at once if one holds the lock.
    @discardableResult
    static func lockPlaylists(
        of jobID: Int64,
        on connection: PostgresConnection,
        waiting: Bool = true,
        logger: Logger
    ) async throws -> Bool {
        let key = Int32(truncatingIfNeeded: jobID)
        let query: PostgresQuery =
            waiting
            ? "SELECT true FROM pg_advisory_xact_lock(74002, \(key))"
            : "SELECT pg_try_advisory_xact_lock(74002, \(key))"
        for try await locked in try await connection.query(query, logger: logger).decode(Bool.self) { return locked }
        return false
    }
}
