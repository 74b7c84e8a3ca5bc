import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// A running job's playlists, published as its segments land (progressive playback).
extension JobStore {
    /// Runs `write` with what a running fMP4 job has accepted so far, one writer per job at a time (the stitch
    /// included, `lockPlaylists`), so each version of a playlist holds every segment the one before did. Does
    /// nothing once the job is stitching or has ended: the stitch writes the final playlists. Nor while another
    /// writer holds the job's lock: a stitch holds it until the job is ready, and waiting for it would hold up
    /// every other job's playlists (`ProgressPublisher` rewrites one job at a time); another coordinator's rewrite
    /// is as new, or the next result's brings the newest segments.
    package func publishProgress(
        jobID: Int64,
        _ write: @Sendable (JobProgress) async throws -> Void
    ) async throws {
        try await self.client.withTransaction(logger: self.logger) { connection in
            guard try await Self.lockPlaylists(of: jobID, on: connection, waiting: false, logger: self.logger) else {
                return
            }
            let rows = try await connection.query(
                "SELECT output_dir, source_info, settings FROM jobs WHERE id = \(jobID) AND state = \(JobState.running)",
                logger: self.logger
            )
            var found: (String, JobSourceInfo, JobSettings)?
            for try await row in rows.decode((String, JobSourceInfo, JobSettings).self) { found = row }
            // MPEG-TS segments are remuxed from the agents' fMP4 by the stitch: nothing to list before it.
            guard let (output, info, settings) = found, settings.container == .fmp4,
                let target = info.plannedTargetDuration
            else { return }
            let (renditions, segments, inits) = try await Self.acceptedOutputs(
                of: jobID,
                on: connection,
                logger: self.logger
            )
            try await write(
                JobProgress(
                    outputDirectory: output,
                    renditions: renditions,
                    hasAudio: info.hasAudio,
                    targetDuration: target,
                    segmentCount: info.segmentCount,
                    segments: segments,
                    initSegments: inits
                )
            )
        }
    }
}

/// What a running job has published so far.
package struct JobProgress: Sendable {
    package var outputDirectory: String
    /// Video renditions, lowest first.
    package var renditions: [RenditionSpec]
    package var hasAudio: Bool
    package var targetDuration: Int
    /// Segments of each video rendition when the job is done.
    package var segmentCount: Int
    package var segments: [OutputFile]
    /// Init segment paths by rendition (`audio` included).
    package var initSegments: [String: String]
}
