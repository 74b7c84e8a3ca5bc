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
    package func create(tenant: String) async throws -> (id: Int64, key: APIKey) {
        let key = APIKey.generate()
        let rows = try await self.client.query(
            """
            INSERT INTO api_keys (tenant, prefix, key_hash) VALUES (\(tenant), \(key.prefix), \(key.hash))
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

    /// Every key, newest first: id, tenant, prefix, made, revoked.
    package func list() async throws -> [(id: Int64, tenant: String, prefix: String, created: Date, revoked: Date?)] {
        let rows = try await self.client.query(
            "SELECT id, tenant, prefix, created_at, revoked_at FROM api_keys ORDER BY id DESC",
            logger: self.logger
        )
        var keys: [(id: Int64, tenant: String, prefix: String, created: Date, revoked: Date?)] = []
        for try await (id, tenant, prefix, created, revoked) in rows.decode((Int64, String, String, Date, Date?).self) {
            keys.append((id, tenant, prefix, created, revoked))
        }
        return keys
    }

    /// The tenant of a live key; nil for a key that was never made or was revoked.
    package func tenant(of key: APIKey) async throws -> String? {
        let rows = try await self.client.query(
            "SELECT tenant FROM api_keys WHERE key_hash = \(key.hash) AND revoked_at IS NULL",
            logger: self.logger
        )
        for try await tenant in rows.decode(String.self) { return tenant }
        return nil
    }
}

package struct APIKeyStoreError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
