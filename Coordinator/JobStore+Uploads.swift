import Foundation
import Logging
import PostgresNIO

/// A tus upload (docs/api.md, "Uploads"): a file a tenant sends in pieces, `received` bytes of `length` stored so
/// far, each piece fsynced before `received` counts it.
package struct Upload: Sendable, Equatable {
    package var id: String
    package var tenant: String
    package var length: Int64
    package var received: Int64
    /// `Upload-Metadata` as the client sent it.
    package var metadata: String
    /// The file on the coordinator's disk.
    package var path: String
    package var expiresAt: Date
    /// The job made from it, once there is one.
    package var jobID: Int64?
    /// The API key that made it, whose caps it and the job of its `farm-settings` count against.
    package var apiKeyID: Int64?

    package var isComplete: Bool { self.received == self.length }

    package init(
        id: String,
        tenant: String,
        length: Int64,
        received: Int64,
        metadata: String,
        path: String,
        expiresAt: Date,
        jobID: Int64?,
        apiKeyID: Int64? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.length = length
        self.received = received
        self.metadata = metadata
        self.path = path
        self.expiresAt = expiresAt
        self.jobID = jobID
        self.apiKeyID = apiKeyID
    }
}

/// Uploads, kept in PostgreSQL so that any coordinator with the upload folder can take the next piece, and one
/// restarted in the middle of an upload carries on where the last fsynced piece ended.
extension JobStore {
    /// Records a new upload; with a `quota`, only while its key has fewer open uploads (neither complete nor
    /// expired) than its cap, else `QuotaReached`.
    package func createUpload(_ upload: Upload, quota: APIKeyQuota? = nil) async throws {
        let refusedAt = try await self.client.withTransaction(logger: self.logger) { connection -> Int? in
            var cap: Int?
            if let quota { cap = try await self.lockQuota(quota, .uploads, on: connection) }
            let rows = try await connection.query(
                """
                INSERT INTO uploads (id, tenant, length, received, metadata, path, expires_at, api_key_id)
                SELECT \(upload.id), \(upload.tenant), \(upload.length), \(upload.received), \(upload.metadata),
                       \(upload.path), \(upload.expiresAt), \(quota?.keyID)
                WHERE \(cap)::integer IS NULL OR (
                    SELECT count(*) FROM uploads
                    WHERE api_key_id = \(quota?.keyID) AND completed_at IS NULL AND received < length AND expires_at > now()
                ) < \(cap)
                RETURNING id
                """,
                logger: self.logger
            )
            for try await _ in rows.decode(String.self) { return nil }
            return cap
        }
        if let cap = refusedAt { throw QuotaReached(kind: .uploads, limit: cap) }
    }

    /// The tenant's upload; nil for another tenant's, or one that expired or was terminated.
    package func upload(_ id: String, tenant: String) async throws -> Upload? {
        let rows = try await self.client.query(
            """
            SELECT id, tenant, length, received, metadata, path, expires_at, job_id, api_key_id FROM uploads
            WHERE id = \(id) AND tenant = \(tenant) AND expires_at > now()
            """,
            logger: self.logger
        )
        for try await (id, tenant, length, received, metadata, path, expires, job, key) in rows.decode(
            (String, String, Int64, Int64, String, String, Date, Int64?, Int64?).self
        ) {
            return Upload(
                id: id,
                tenant: tenant,
                length: length,
                received: received,
                metadata: metadata,
                path: path,
                expiresAt: expires,
                jobID: job,
                apiKeyID: key
            )
        }
        return nil
    }

    /// Counts bytes `from ..< to` of the upload as stored, when it still had `from` (false when another request
    /// moved it meanwhile, or it is gone).
    package func advanceUpload(_ id: String, from: Int64, to: Int64) async throws -> Bool {
        let rows = try await self.client.query(
            """
            UPDATE uploads SET received = \(to), completed_at = CASE WHEN \(to) = length THEN now() END
            WHERE id = \(id) AND received = \(from) AND \(to) <= length RETURNING id
            """,
            logger: self.logger
        )
        for try await _ in rows.decode(String.self) { return true }
        return false
    }

    /// Runs `body` holding the upload's writer lock (a PostgreSQL advisory lock, so it holds across coordinators),
    /// with false when another request holds it. One piece of an upload is written at a time: a second writer
    /// reading the offset before the first counted its piece would cut the first's bytes off.
    package func withUploadLock<Result: Sendable>(
        _ id: String,
        _ body: (Bool) async throws -> Result
    ) async throws -> Result {
        try await self.client.withConnection { connection in
            var locked = false
            let rows = try await connection.query(
                "SELECT pg_try_advisory_lock(hashtextextended(\(id), 7400274002))",
                logger: self.logger
            )
            for try await value in rows.decode(Bool.self) { locked = value }
            // Released in a task of its own: a lock left held by a cancelled request would stay with the pooled
            // connection and refuse every later piece of the upload.
            let held = locked
            let logger = self.logger
            func unlock() async {
                guard held else { return }
                _ = try? await Task {
                    try await connection.query(
                        "SELECT pg_advisory_unlock(hashtextextended(\(id), 7400274002))",
                        logger: logger
                    )
                }.value
            }
            do {
                let result = try await body(held)
                await unlock()
                return result
            } catch {
                await unlock()
                throw error
            }
        }
    }

    /// Records the job made from a finished upload (the first, which HEAD names). Every job that reads the upload
    /// keeps it from the janitor (`removeExpiredUploads`), whichever it is.
    package func attachUpload(_ id: String, jobID: Int64) async throws {
        try await self.client.query(
            "UPDATE uploads SET job_id = \(jobID) WHERE id = \(id) AND job_id IS NULL",
            logger: self.logger
        )
    }

    /// Terminates the tenant's upload: its row goes, and the file's path is returned for removal. An upload a job
    /// reads stays (`.inUse`).
    package func deleteUpload(_ id: String, tenant: String) async throws -> UploadDeletion {
        let rows = try await self.client.query(
            """
            WITH target AS (SELECT id, job_id FROM uploads WHERE id = \(id) AND tenant = \(tenant) AND expires_at > now()),
            deleted AS (
                DELETE FROM uploads u USING target
                WHERE u.id = target.id AND u.job_id IS NULL AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.source = u.path)
                RETURNING u.path
            )
            SELECT (SELECT path FROM deleted),
                   coalesce((SELECT job_id FROM target), (SELECT max(j.id) FROM jobs j, uploads u
                                                          WHERE u.id = \(id) AND j.source = u.path)),
                   EXISTS (SELECT 1 FROM target)
            """,
            logger: self.logger
        )
        for try await (path, job, exists) in rows.decode((String?, Int64?, Bool).self) {
            if let path { return .deleted(path: path) }
            guard exists else { return .missing }
            return job.map { .inUse(jobID: $0) } ?? .deleted(path: nil)
        }
        return .missing
    }

    /// Deletes uploads past their expiry that no job needs, at most `limit`, and returns their files' paths for the
    /// janitor to remove. A job needs its upload until it ends and for the upload's lifetime after (a failed job
    /// may be retried from it); every job that reads it counts, retries included.
    package func removeExpiredUploads(limit: Int = 100) async throws -> [String] {
        let rows = try await self.client.query(
            """
            DELETE FROM uploads WHERE id IN (
                SELECT u.id FROM uploads u
                WHERE u.expires_at < now()
                  AND NOT EXISTS (
                      SELECT 1 FROM jobs j WHERE j.source = u.path
                        AND (j.finished_at IS NULL OR j.finished_at > now() - (u.expires_at - u.created_at))
                  )
                LIMIT \(limit)
            ) RETURNING path
            """,
            logger: self.logger
        )
        var paths: [String] = []
        for try await path in rows.decode(String.self) { paths.append(path) }
        return paths
    }
}

package enum UploadDeletion: Sendable, Equatable {
    case deleted(path: String?)
    case inUse(jobID: Int64)
    case missing
}
