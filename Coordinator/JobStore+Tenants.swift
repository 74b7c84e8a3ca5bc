import Foundation
import Logging
import PostgresNIO

/// A job as its tenant sees it through the HTTP API.
package struct TenantJob: Sendable, Equatable {
    package var id: Int64
    package var state: JobState
    package var error: String?
    package var priority: Int
    package var createdAt: Date
    package var finishedAt: Date?
    package var durationSeconds: Double?
    package var tasksTotal: Int
    package var tasksDone: Int
    /// The failed or cancelled job this one runs again.
    package var retryOf: Int64?
    /// Where the coordinator fetches (or fetched) the source from, for a job submitted with a URL.
    package var sourceURL: String?
    /// The client's own JSON, as stored.
    package var metadata: String?
    package var webhookURL: String?
}

/// A retry of a job that has not ended as failed or cancelled.
package struct JobNotRetryable: Error, CustomStringConvertible {
    package var jobID: Int64
    package var state: JobState
    package var description: String {
        "job \(self.jobID) is \(self.state.rawValue): only a failed or cancelled job can be retried"
            + (self.state == .ready ? "; it is done" : "; cancel it first, or wait for it to end")
    }
}

/// Jobs seen through a tenant's API key: a job of another tenant (or of the command line) does not exist for it.
extension JobStore {
    package func job(_ jobID: Int64, tenant: String) async throws -> TenantJob? {
        try await self.tenantJobs(tenant: tenant, id: jobID, state: nil, before: nil, limit: 1).first
    }

    /// The tenant's jobs, newest first, at most `limit`, older than the job `before` (keyset pagination: a page
    /// is the same whatever is submitted meanwhile), in one state or all.
    package func jobs(tenant: String, state: JobState?, before: Int64?, limit: Int) async throws -> [TenantJob] {
        try await self.tenantJobs(tenant: tenant, id: nil, state: state, before: before, limit: limit)
    }

    /// Cancels the tenant's job; nil when it has no such job, false when the job had already ended.
    package func cancel(jobID: Int64, tenant: String) async throws -> Bool? {
        guard try await self.job(jobID, tenant: tenant) != nil else { return nil }
        return try await self.cancel(jobID: jobID)
    }

    /// Submits the tenant's failed or cancelled job again, as a new job with the same source, settings, priority,
    /// metadata and webhook writing a new `outputDirectory`; nil when the tenant has no such job. A source given by
    /// URL is fetched again, to `fetchPath`. With `idempotency`, a retried request finds the job the first one made.
    package func retry(
        jobID: Int64,
        tenant: String,
        outputDirectory: String,
        fetchPath: String,
        idempotency: IdempotencyKey?,
        quota: APIKeyQuota? = nil
    ) async throws -> (id: Int64, replayed: Bool)? {
        let rows = try await self.client.query(
            """
            SELECT source, settings, priority, state, source_url, metadata::text, webhook_url, webhook_secret
            FROM jobs WHERE id = \(jobID) AND tenant = \(tenant)
            """,
            logger: self.logger
        )
        for try await (source, settings, priority, state, url, metadata, webhookURL, webhookSecret) in rows.decode(
            (String, JobSettings, Int, JobState, String?, String?, String?, String?).self
        ) {
            guard state == .failed || state == .cancelled else { throw JobNotRetryable(jobID: jobID, state: state) }
            return try await self.submit(
                source: url == nil ? source : fetchPath,
                outputDirectory: outputDirectory,
                settings: settings,
                priority: priority,
                tenant: tenant,
                idempotency: idempotency,
                retryOf: jobID,
                details: APIJobDetails(
                    sourceURL: url,
                    metadata: metadata,
                    webhookURL: webhookURL,
                    webhookSecret: webhookSecret,
                    quota: quota
                )
            )
        }
        return nil
    }

    private func tenantJobs(
        tenant: String,
        id: Int64?,
        state: JobState?,
        before: Int64?,
        limit: Int
    ) async throws -> [TenantJob] {
        let rows = try await self.client.query(
            """
            SELECT j.id, j.state, j.error, j.priority, j.created_at, j.finished_at, j.duration_seconds,
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id),
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND t.state = \(TaskState.done)), j.retry_of,
                   j.source_url, j.metadata::text, j.webhook_url
            FROM jobs j
            WHERE j.tenant = \(tenant) AND (\(id)::bigint IS NULL OR j.id = \(id))
              AND (\(state?.rawValue)::text IS NULL OR j.state = \(state?.rawValue)) AND j.id < \(before ?? Int64.max)
            ORDER BY j.id DESC LIMIT \(limit)
            """,
            logger: self.logger
        )
        var jobs: [TenantJob] = []
        for try await (
            id, state, error, priority, created, finished, duration, total, done, retryOf, url, metadata, webhookURL
        ) in rows.decode(
            (Int64, JobState, String?, Int, Date, Date?, Double?, Int64, Int64, Int64?, String?, String?, String?).self
        ) {
            jobs.append(
                TenantJob(
                    id: id,
                    state: state,
                    error: error,
                    priority: priority,
                    createdAt: created,
                    finishedAt: finished,
                    durationSeconds: duration,
                    tasksTotal: Int(total),
                    tasksDone: Int(done),
                    retryOf: retryOf,
                    sourceURL: url,
                    metadata: metadata,
                    webhookURL: webhookURL
                )
            )
        }
        return jobs
    }
}
