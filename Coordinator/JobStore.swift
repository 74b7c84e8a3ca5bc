import Logging
import PostgresNIO

/// Every statement the farm runs against PostgreSQL, the farm's only source of truth.
///
/// Times come from the database's clock (`now()`), never a coordinator's, so coordinators on several machines agree
/// on when a lease runs out. Values are bound by interpolation (`\(value)` is a bind parameter).
package struct JobStore: Sendable {
    package let client: PostgresClient
    package let logger: Logger

    package init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The channel idle agents' sessions wait on for new work.
    package static let workChannel = "farm_work"

    /// Sends a notification on `workChannel`: on `connection`, delivered when its transaction commits; without one,
    /// at once.
    package func notifyWork(_ payload: String, on connection: PostgresConnection? = nil) async throws {
        try await self.notify(Self.workChannel, payload, on: connection)
    }

    private func notify(_ channel: String, _ payload: String, on connection: PostgresConnection?) async throws {
        let notification: PostgresQuery = "SELECT pg_notify(\(channel), \(payload))"
        if let connection {
            _ = try await connection.query(notification, logger: self.logger)
        } else {
            _ = try await self.client.query(notification, logger: self.logger)
        }
    }

    /// The channel of the HTTP API's own news (`events:<job>`, `fetch`, `webhooks`): its streams, source fetches and
    /// webhook deliveries wait on it (migrations 11 and 12 notify it from triggers).
    package static let apiChannel = "farm_api"

    /// Sends a notification on `apiChannel`, delivered at once (or when `connection`'s transaction commits).
    package func notifyAPI(_ payload: String, on connection: PostgresConnection? = nil) async throws {
        try await self.notify(Self.apiChannel, payload, on: connection)
    }

    /// When a task whose attempt failed (or whose lease expired) may run again: an exponential backoff with jitter
    /// over its `attempts`, 1 s after the first doubling up to 30 s, each within ±25 %. SQL for `tasks.run_after`.
    static let retryAfter = "now() + make_interval(secs => least(30, power(2, attempts - 1)) * (0.75 + random() / 2))"
}
