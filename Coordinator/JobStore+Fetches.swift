import Foundation
import Logging
import PostgresNIO

/// A job's source to fetch from its URL, claimed by one coordinator (`JobStore.claimSourceFetch`).
package struct SourceFetch: Sendable, Equatable {
    package var jobID: Int64
    package var url: String
    /// Where the video goes: the job's `source`.
    package var path: String
    /// This claim's number: 1 for the first.
    package var attempt: Int
}

/// Sources that jobs name by URL (migration 10): a fetch is claimed like a lease, so one coordinator at a time
/// fetches a job's source, and another takes it over when that one dies.
extension JobStore {
    /// Claims the oldest submitted job of the highest priority whose source waits to be fetched, for `leaseSeconds`.
    package func claimSourceFetch(leaseSeconds: Double) async throws -> SourceFetch? {
        let rows = try await self.client.query(
            """
            UPDATE jobs SET fetch_leased_until = now() + make_interval(secs => \(leaseSeconds)),
                            fetch_attempts = fetch_attempts + 1
            WHERE id = (
                SELECT id FROM jobs
                WHERE state = \(JobState.submitted) AND source_url IS NOT NULL AND source_fetched_at IS NULL
                  AND (fetch_leased_until IS NULL OR fetch_leased_until < now())
                ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1
            )
            RETURNING id, source_url, source, fetch_attempts
            """,
            logger: self.logger
        )
        for try await (id, url, path, attempt) in rows.decode((Int64, String, String, Int).self) {
            return SourceFetch(jobID: id, url: url, path: path, attempt: attempt)
        }
        return nil
    }

    /// Extends a fetch's claim; false when the job is no longer waiting for it (cancelled meanwhile).
    package func renewSourceFetch(_ jobID: Int64, leaseSeconds: Double) async throws -> Bool {
        let rows = try await self.client.query(
            """
            UPDATE jobs SET fetch_leased_until = now() + make_interval(secs => \(leaseSeconds))
            WHERE id = \(jobID) AND state = \(JobState.submitted) AND source_fetched_at IS NULL RETURNING id
            """,
            logger: self.logger
        )
        for try await _ in rows.decode(Int64.self) { return true }
        return false
    }

    /// The source is on disk: the job may be planned (planners are woken).
    package func finishSourceFetch(_ jobID: Int64) async throws {
        _ = try await self.client.query(
            """
            UPDATE jobs SET source_fetched_at = now(), fetch_leased_until = NULL
            WHERE id = \(jobID) AND state = \(JobState.submitted)
            """,
            logger: self.logger
        )
        try await self.notifyWork("job")
    }

    /// A fetch that failed: tried again after `retryAfter` seconds (by any coordinator), or, without it, the job
    /// fails with `error`.
    package func failSourceFetch(_ jobID: Int64, error: String, retryAfter: Double?) async throws {
        if let retryAfter {
            _ = try await self.client.query(
                """
                UPDATE jobs SET fetch_leased_until = now() + make_interval(secs => \(retryAfter)), error = \(error)
                WHERE id = \(jobID) AND state = \(JobState.submitted)
                """,
                logger: self.logger
            )
            return
        }
        _ = try await self.client.withTransaction(logger: self.logger) { connection in
            try await self.failJob(jobID, error: error, on: connection)
        }
    }

    /// Sources fetched for jobs that ended more than `lifetime` seconds ago, forgotten (a retry fetches again);
    /// returns their paths for the caller to remove.
    package func forgetFetchedSources(olderThan lifetime: Double, limit: Int = 100) async throws -> [String] {
        let rows = try await self.client.query(
            """
            UPDATE jobs SET source_fetched_at = NULL
            WHERE id IN (
                SELECT id FROM jobs
                WHERE source_url IS NOT NULL AND source_fetched_at IS NOT NULL
                  AND state IN (\(JobState.ready), \(JobState.failed), \(JobState.cancelled))
                  AND finished_at < now() - make_interval(secs => \(lifetime))
                ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED
            )
            RETURNING source
            """,
            logger: self.logger
        )
        var paths: [String] = []
        for try await path in rows.decode(String.self) { paths.append(path) }
        return paths
    }
}
