import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// Leases whose agents went silent, and the partial output of jobs that ended without publishing.
extension JobStore {
    /// Returns expired leases to the queue (or fails them once attempts are spent). The state and expiry are checked
    /// again inside the UPDATE, so a lease renewed or completed meanwhile is left alone.
    package func reapExpiredLeases() async throws -> [ReapedLease] {
        try await self.client.withTransaction(logger: self.logger) { connection -> [ReapedLease] in
            let rows = try await connection.query(
                """
                WITH expired AS (
                    SELECT id FROM tasks WHERE state = \(TaskState.leased) AND lease_expires_at < now()
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE tasks t SET
                    state = CASE WHEN t.attempts < t.max_attempts THEN \(TaskState.queued) ELSE \(TaskState.failed) END,
                    last_error = 'lease expired: agent ' || coalesce(t.lease_owner, '?') || ' stopped responding',
                    lease_expires_at = NULL,
                    run_after = \(unescaped: Self.retryAfter)
                FROM expired
                WHERE t.id = expired.id AND t.state = \(TaskState.leased) AND t.lease_expires_at < now()
                RETURNING t.id, t.job_id, coalesce(t.lease_owner, '?'), t.state, t.attempts, t.max_attempts, t.spec
                """,
                logger: self.logger
            )
            var reaped: [ReapedLease] = []
            var failures: [(Int64, String)] = []
            for try await (taskID, jobID, agent, state, attempts, maxAttempts, spec) in rows.decode(
                (Int64, Int64, String, TaskState, Int, Int, TaskSpec).self
            ) {
                reaped.append(ReapedLease(taskID: taskID, jobID: jobID, agent: agent, requeued: state == .queued))
                if state == .failed {
                    failures.append(
                        (
                            jobID,
                            Self.failureReport(
                                spec: spec,
                                message: "the agent stopped responding and its lease expired",
                                attempts: attempts,
                                maxAttempts: maxAttempts,
                                agent: agent
                            )
                        )
                    )
                }
            }
            for (jobID, report) in failures { try await self.failJob(jobID, error: report, on: connection) }
            if reaped.contains(where: \.requeued) {
                try await self.notifyWork("reaped", on: connection)
            }
            return reaped
        }
    }

    /// Claims one failed or cancelled job whose partial output is still on disk, runs `remove` with its output
    /// folder and the files its accepted results published, and marks it cleaned. Nothing can publish into a job
    /// once it has ended (completion requires a leased task), so the files listed are all there will be.
    package func cleanNextEndedJob(
        _ remove: @Sendable (_ outputDirectory: String, _ publishedFiles: [String]) async throws -> Void
    ) async throws -> Int64? {
        try await self.client.withTransaction(logger: self.logger) { connection -> Int64? in
            let rows = try await connection.query(
                """
                SELECT id, output_dir FROM jobs WHERE state IN (\(JobState.failed), \(JobState.cancelled)) AND cleaned_at IS NULL
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: (Int64, String)?
            for try await row in rows.decode((Int64, String).self) { claimed = row }
            guard let (jobID, output) = claimed else { return nil }
            // A later job already writes this folder (a resubmission): its files have the same names, so nothing
            // here is this job's any more.
            var reused = false
            for try await exists in try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE output_dir = \(output) AND id > \(jobID))",
                logger: self.logger
            ).decode(Bool.self) {
                reused = exists
            }
            if !reused {
                var files: [String] = []
                for try await path in try await connection.query(
                    """
                    SELECT path FROM segments WHERE job_id = \(jobID)
                    UNION SELECT path FROM init_segments WHERE job_id = \(jobID)
                    """,
                    logger: self.logger
                ).decode(String.self) {
                    files.append(path)
                }
                try await remove(output, files)
            }
            _ = try await connection.query(
                "UPDATE jobs SET cleaned_at = now() WHERE id = \(jobID)",
                logger: self.logger
            )
            return jobID
        }
    }
}
