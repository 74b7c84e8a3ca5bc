import Foundation
import Logging
import PostgresNIO

/// API keys in PostgreSQL (table `api_keys`, migration 7): made and revoked by `farm keys`, looked up by hash on
/// every request.
package struct APIKeyStore: Sendable {
    package let client: PostgresClient
    package let logger: Logger

    package init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// A key made for `tenant`; the only time its text exists outside the client that holds it.
    package func create(tenant: String, caps: APIKeyCaps = APIKeyCaps()) async throws -> (id: Int64, key: APIKey) {
        let key = APIKey.generate()
        let rows = try await self.client.query(
            """
            INSERT INTO api_keys (tenant, prefix, key_hash, max_jobs_in_flight, max_uploads)
            VALUES (\(tenant), \(key.prefix), \(key.hash), \(caps.maxJobsInFlight), \(caps.maxUploads))
            RETURNING id
            """,
            logger: self.logger
        )
        for try await id in rows.decode(Int64.self) { return (id, key) }
        throw APIKeyStoreError("inserting the key returned no id")
    }

    /// Revokes a key by its id or its prefix (as `farm keys list` shows them); false when no live key matches.
    package func revoke(_ name: String) async throws -> Bool {
        let rows = try await self.client.query(
            """
            UPDATE api_keys SET revoked_at = now()
            WHERE revoked_at IS NULL AND (prefix = \(name) OR id::text = \(name)) RETURNING id
            """,
            logger: self.logger
        )
        var revoked = false
        for try await _ in rows.decode(Int64.self) { revoked = true }
        return revoked
    }

    /// Sets a live key's caps (nil: the coordinator's default) by its id or prefix; false when no live key matches.
    package func setCaps(_ name: String, _ caps: APIKeyCaps) async throws -> Bool {
        let rows = try await self.client.query(
            """
            UPDATE api_keys SET max_jobs_in_flight = \(caps.maxJobsInFlight), max_uploads = \(caps.maxUploads)
            WHERE revoked_at IS NULL AND (prefix = \(name) OR id::text = \(name)) RETURNING id
            """,
            logger: self.logger
        )
        var changed = false
        for try await _ in rows.decode(Int64.self) { changed = true }
        return changed
    }

    /// Every key, newest first.
    package func list() async throws -> [APIKeyRecord] {
        let rows = try await self.client.query(
            """
            SELECT id, tenant, prefix, created_at, revoked_at, max_jobs_in_flight, max_uploads
            FROM api_keys ORDER BY id DESC
            """,
            logger: self.logger
        )
        var keys: [APIKeyRecord] = []
        for try await (id, tenant, prefix, created, revoked, jobs, uploads) in rows.decode(
            (Int64, String, String, Date, Date?, Int?, Int?).self
        ) {
            keys.append(
                APIKeyRecord(
                    id: id,
                    tenant: tenant,
                    prefix: prefix,
                    created: created,
                    revoked: revoked,
                    caps: APIKeyCaps(maxJobsInFlight: jobs, maxUploads: uploads)
                )
            )
        }
        return keys
    }

    /// The id and tenant of a live key; nil for a key that was never made or was revoked.
    package func owner(of key: APIKey) async throws -> (id: Int64, tenant: String)? {
        let rows = try await self.client.query(
            "SELECT id, tenant FROM api_keys WHERE key_hash = \(key.hash) AND revoked_at IS NULL",
            logger: self.logger
        )
        for try await owner in rows.decode((Int64, String).self) { return owner }
        return nil
    }
}

/// A key's own caps (docs/api.md, "Limits"); nil where the coordinator's default holds.
package struct APIKeyCaps: Sendable, Equatable {
    package var maxJobsInFlight: Int?
    package var maxUploads: Int?

    package init(maxJobsInFlight: Int? = nil, maxUploads: Int? = nil) {
        self.maxJobsInFlight = maxJobsInFlight
        self.maxUploads = maxUploads
    }
}

/// A key as `farm keys list` shows it; never its text, which is not kept.
package struct APIKeyRecord: Sendable {
    package var id: Int64
    package var tenant: String
    package var prefix: String
    package var created: Date
    package var revoked: Date?
    package var caps: APIKeyCaps
}

package struct APIKeyStoreError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
