import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// Agents' results: accepted under the current lease token, or failed attempts.
extension JobStore {
    /// Accepts a result only while `token` is the task's current lease: a compare-and-swap on the token. The
    /// segment rows are written and `publish` moves the files into place inside the same transaction, so an
    /// accepted result and its files go together. A report of a result that was already accepted is acknowledged
    /// without effect; anything else is stale.
    package func complete(
        taskID: Int64,
        token: Int64,
        agentName: String,
        coordinator: String,
        outputs: [OutputFile],
        publish: @Sendable () async throws -> Void
    ) async throws -> CompletionVerdict {
        do {
            return try await self.accept(taskID, token, agentName, coordinator, outputs, publish)
        } catch let error as PostgresTransactionError {
            // Rolled back: nothing of the result was written.
            guard let mismatch = error.closureError as? InitSegmentMismatch, error.rollbackError == nil else {
                throw error
            }
            return .refused(reason: mismatch.description)
        }
    }

    /// `complete`'s transaction; throws `InitSegmentMismatch` (rolling everything back) for a foreign init segment.
    private func accept(
        _ taskID: Int64,
        _ token: Int64,
        _ agentName: String,
        _ coordinator: String,
        _ outputs: [OutputFile],
        _ publish: @Sendable () async throws -> Void
    ) async throws -> CompletionVerdict {
        try await self.client.withTransaction(logger: self.logger) { connection -> CompletionVerdict in
            let rows = try await connection.query(
                """
                UPDATE tasks SET state = \(TaskState.done), accepted_token = lease_token, accepted_by = \(agentName),
                    done_at = now(), lease_expires_at = NULL
                WHERE id = \(taskID) AND lease_token = \(token) AND state = \(TaskState.leased)
                RETURNING job_id
                """,
                logger: self.logger
            )
            var jobID: Int64?
            for try await id in rows.decode(Int64.self) { jobID = id }
            guard let jobID else {
                let current = try await connection.query(
                    "SELECT state, accepted_token, lease_token FROM tasks WHERE id = \(taskID)",
                    logger: self.logger
                )
                for try await (state, accepted, leased) in current.decode((TaskState, Int64?, Int64?).self) {
                    if accepted == token { return .alreadyAccepted }
                    return .stale(
                        reason: "task \(taskID) is \(state) under lease token \(leased.map(String.init) ?? "none"), "
                            + "the result carries token \(token)"
                    )
                }
                return .stale(reason: "task \(taskID) does not exist")
            }
            _ = try await connection.query(
                """
                INSERT INTO task_results (task_id, token, agent, coordinator, seconds, media_seconds)
                SELECT \(taskID), \(token), \(agentName), \(coordinator),
                       extract(epoch FROM now() - leased_at)::double precision, media_seconds
                FROM tasks WHERE id = \(taskID)
                """,
                logger: self.logger
            )
            for output in outputs {
                switch output.role {
                case .initSegment:
                    // Every chunk of a rendition must bring the same init segment: the first accepted is kept, and
                    // a different one refuses the result. Compared inside this transaction, so two chunks accepted
                    // at once cannot both pass: the second insert waits for the first to commit, and the SELECT,
                    // a statement of its own, sees what it committed.
                    _ = try await connection.query(
                        """
                        INSERT INTO init_segments (job_id, rendition, sha256, bytes, path)
                        VALUES (\(jobID), \(output.rendition), \(output.sha256), \(output.bytes), \(output.path))
                        ON CONFLICT (job_id, rendition) DO NOTHING
                        """,
                        logger: self.logger
                    )
                    let kept = try await connection.query(
                        "SELECT sha256 FROM init_segments WHERE job_id = \(jobID) AND rendition = \(output.rendition)",
                        logger: self.logger
                    )
                    for try await hash in kept.decode(String.self) where hash != output.sha256 {
                        throw InitSegmentMismatch(rendition: output.rendition)
                    }
                case .segment:
                    _ = try await connection.query(
                        """
                        INSERT INTO segments (job_id, rendition, index, task_id, start_pts, duration, timebase_num,
                                              timebase_den, frames, bytes, sha256, path)
                        VALUES (\(jobID), \(output.rendition), \(output.segmentIndex ?? -1), \(taskID),
                                \(output.startPTS), \(output.duration), \(Int(output.timeBase.num)),
                                \(Int(output.timeBase.den)), \(output.frames), \(output.bytes), \(output.sha256),
                                \(output.path))
                        """,
                        logger: self.logger
                    )
                }
            }
            try await publish()
            let remaining = try await connection.query(
                "SELECT count(*) FROM tasks WHERE job_id = \(jobID) AND state <> \(TaskState.done)",
                logger: self.logger
            )
            var left = 0
            for try await count in remaining.decode(Int64.self) { left = Int(count) }
            if left == 0 {
                _ = try await connection.query(
                    "UPDATE jobs SET state = \(JobState.stitching), updated_at = now() WHERE id = \(jobID) AND state = \(JobState.running)",
                    logger: self.logger
                )
                try await self.notifyWork("stitch", on: connection)
            }
            return .accepted(remainingTasks: left)
        }
    }

    /// Records a failed attempt under the current token. A retryable failure with attempts left goes back to the
    /// queue after an exponential backoff with jitter; otherwise the task fails and so does its job, with a report
    /// naming the chunk, the cause, the attempt and the agent. Returns the job's error when the job failed.
    package func fail(
        taskID: Int64,
        token: Int64,
        agentName: String,
        message: String,
        retryable: Bool
    ) async throws -> String? {
        try await self.client.withTransaction(logger: self.logger) { connection -> String? in
            let rows = try await connection.query(
                """
                UPDATE tasks SET
                    state = CASE WHEN \(retryable) AND attempts < max_attempts THEN \(TaskState.queued) ELSE \(TaskState.failed) END,
                    last_error = \(message), lease_expires_at = NULL,
                    run_after = \(unescaped: Self.retryAfter)
                WHERE id = \(taskID) AND lease_token = \(token) AND state = \(TaskState.leased)
                RETURNING job_id, state, attempts, max_attempts, spec
                """,
                logger: self.logger
            )
            for try await (jobID, state, attempts, maxAttempts, spec) in rows.decode(
                (Int64, TaskState, Int, Int, TaskSpec).self
            ) {
                guard state == .failed else { return nil }
                let report = Self.failureReport(
                    spec: spec,
                    message: message,
                    attempts: attempts,
                    maxAttempts: maxAttempts,
                    agent: agentName
                )
                try await self.failJob(jobID, error: report, on: connection)
                return report
            }
            return nil
        }
    }

    /// `chunk 17/120 [102.0 s–108.0 s]: <cause> (attempt 1/5, agent gpu-3)`; a chunk cut into several tasks names
    /// the task's rungs too: `chunk 17/120 1080p [102.0 s–108.0 s]: ...`.
    package static func failureReport(
        spec: TaskSpec,
        message: String,
        attempts: Int,
        maxAttempts: Int,
        agent: String
    ) -> String {
        let what: String
        switch spec.kind {
        case .audio:
            what = "audio track"
        case .video:
            let start = spec.timeBase.seconds(spec.startPTS - spec.originPTS)
            let end = spec.endPTS.map { String(format: "%.1f s", spec.timeBase.seconds($0 - spec.originPTS)) } ?? "end"
            what = "\(spec.chunkLabel) [\(String(format: "%.1f s", start))–\(end)]"
        }
        return "\(what): \(message) (attempt \(attempts)/\(maxAttempts), agent \(agent))"
    }
}
