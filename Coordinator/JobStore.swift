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
}
