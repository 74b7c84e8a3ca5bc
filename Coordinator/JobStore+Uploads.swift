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

    package var isComplete: Bool { self.received == self.length }

    package init(
        id: String,
        tenant: String,
        length: Int64,
        received: Int64,
        metadata: String,
        path: String,
        expiresAt: Date,
        jobID: Int64?
    ) {
        self.id = id
        self.tenant = tenant
        self.length = length
        self.received = received
        self.metadata = metadata
        self.path = path
        self.expiresAt = expiresAt
        self.jobID = jobID
    }
}

/// Uploads, kept in PostgreSQL so that any coordinator with the upload folder can take the next piece, and one
/// restarted in the middle of an upload carries on where the last fsynced piece ended.
extension JobStore {
    package func createUpload(_ upload: Upload) async throws {
        try await self.client.query(
            """
            INSERT INTO uploads (id, tenant, length, received, metadata, path, expires_at)
            VALUES (\(upload.id), \(upload.tenant), \(upload.length), \(upload.received), \(upload.metadata),
                    \(upload.path), \(upload.expiresAt))
            """,
            logger: self.logger
        )
    }

    /// The tenant's upload; nil for another tenant's, or one that expired or was terminated.
    package func upload(_ id: String, tenant: String) async throws -> Upload? {
        let rows = try await self.client.query(
            """
            SELECT id, tenant, length, received, metadata, path, expires_at, job_id FROM uploads
            WHERE id = \(id) AND tenant = \(tenant) AND expires_at > now()
            """,
            logger: self.logger
        )
        for try await (id, tenant, length, received, metadata, path, expires, job) in rows.decode(
            (String, String, Int64, Int64, String, String, Date, Int64?).self
        ) {
            return Upload(
                id: id,
                tenant: tenant,
                length: length,
                received: received,
                metadata: metadata,
                path: path,
                expiresAt: expires,
                jobID: job
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

    /// Records the job made from a finished upload, and keeps the upload (the job's source) while the job is not
    /// cleaned up: for `lifetime` after the job ends at the least.
    package func attachUpload(_ id: String, jobID: Int64) async throws {
        try await self.client.query(
            "UPDATE uploads SET job_id = \(jobID) WHERE id = \(id) AND job_id IS NULL",
            logger: self.logger
        )
    }

    /// Terminates the tenant's upload: its row goes, and the file's path is returned for removal. Nil when there is
    /// no such upload; an upload a job was made from stays (the job reads it), and is reported as `.inUse`.
    package func deleteUpload(_ id: String, tenant: String) async throws -> UploadDeletion {
        let rows = try await self.client.query(
            """
            WITH target AS (SELECT id, job_id FROM uploads WHERE id = \(id) AND tenant = \(tenant) AND expires_at > now()),
            deleted AS (DELETE FROM uploads u USING target WHERE u.id = target.id AND target.job_id IS NULL RETURNING u.path)
            SELECT (SELECT path FROM deleted), (SELECT job_id FROM target), EXISTS (SELECT 1 FROM target)
            """,
            logger: self.logger
        )
        for try await (path, job, exists) in rows.decode((String?, Int64?, Bool).self) {
            if let path { return .deleted(path: path) }
            if let job { return .inUse(jobID: job) }
            return exists ? .deleted(path: nil) : .missing
        }
        return .missing
    }

    /// Deletes uploads past their expiry whose job (if any) has ended, at most `limit`, and returns their files'
    /// paths for the janitor to remove.
    package func removeExpiredUploads(limit: Int = 100) async throws -> [String] {
        let rows = try await self.client.query(
            """
            DELETE FROM uploads WHERE id IN (
                SELECT u.id FROM uploads u LEFT JOIN jobs j ON j.id = u.job_id
                WHERE u.expires_at < now()
                  AND (u.job_id IS NULL OR j.state IN (\(JobState.ready), \(JobState.failed), \(JobState.cancelled)))
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
