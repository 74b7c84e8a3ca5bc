import Foundation
import Logging
import PostgresNIO

/// The caps an API key has when it has none of its own (`farm coordinator --key-max-jobs-in-flight`,
/// `--key-max-uploads`; docs/api.md, "Limits").
package struct APIKeyLimits: Sendable, Equatable {
    /// Jobs submitted, running or stitching at once.
    package var maxJobsInFlight: Int
    /// Uploads created and not yet complete (nor expired) at once.
    package var maxUploads: Int

    package static let standard = APIKeyLimits(maxJobsInFlight: 100, maxUploads: 20)

    package init(maxJobsInFlight: Int, maxUploads: Int) {
        self.maxJobsInFlight = maxJobsInFlight
        self.maxUploads = maxUploads
    }
}

/// The key a request came with, which its jobs and uploads count against.
package struct APIKeyQuota: Sendable, Equatable {
    package var keyID: Int64
    /// Its caps where the key has none of its own (`api_keys.max_jobs_in_flight`, `max_uploads`).
    package var defaults: APIKeyLimits

    package init(keyID: Int64, defaults: APIKeyLimits) {
        self.keyID = keyID
        self.defaults = defaults
    }
}

/// A key already has as many jobs in flight, or open uploads, as it may.
package struct QuotaReached: Error, CustomStringConvertible {
    package enum Kind: Sendable { case jobsInFlight, uploads }
    package var kind: Kind
    package var limit: Int

    package var description: String {
        switch self.kind {
        case .jobsInFlight:
            "this API key has \(self.limit) jobs submitted or running, its cap: wait for one to end (follow "
                + "GET /v1/jobs/{id}/events) or cancel one, then submit again; the farm's operator can raise the cap "
                + "(farm keys limit)"
        case .uploads:
            "this API key has \(self.limit) uploads open, its cap: finish or terminate (DELETE) one, or let it "
                + "expire, then create the next; the farm's operator can raise the cap (farm keys limit)"
        }
    }
}

extension JobStore {
    /// Locks the quota's key for the rest of `connection`'s transaction and gives its cap of `kind`: one key's
    /// submits (or uploads) wait for each other, so two at once cannot both take its last place. The statement
    /// that counts must run after this one, in READ COMMITTED a snapshot that sees the one before it committed.
    func lockQuota(
        _ quota: APIKeyQuota,
        _ kind: QuotaReached.Kind,
        on connection: PostgresConnection
    ) async throws -> Int {
        let fallback = kind == .jobsInFlight ? quota.defaults.maxJobsInFlight : quota.defaults.maxUploads
        let rows = try await connection.query(
            """
            SELECT CASE WHEN \(kind == .jobsInFlight) THEN max_jobs_in_flight ELSE max_uploads END
            FROM api_keys WHERE id = \(quota.keyID) FOR UPDATE
            """,
            logger: self.logger
        )
        for try await cap in rows.decode(Int?.self) { return cap ?? fallback }
        throw ConfigurationError("API key \(quota.keyID) is not in the database")
    }
}
