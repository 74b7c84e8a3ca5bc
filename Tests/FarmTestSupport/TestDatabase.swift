import FarmCoordinator
import Foundation
import Logging
import PostgresNIO

/// A fresh database per test on the server named by `FARM_TEST_DATABASE_URL` (started by `make test`).
package struct TestDatabase: Sendable {
    package let url: DatabaseURL

    package init(url: DatabaseURL) { self.url = url }

    /// True when a server is configured, or when running in CI (where a missing server must fail, not skip).
    package static var isAvailable: Bool {
        ProcessInfo.processInfo.environment["FARM_TEST_DATABASE_URL"] != nil
            || ProcessInfo.processInfo.environment["CI"] != nil
    }

    package static let skipMessage = "needs PostgreSQL: run `make test`, or set FARM_TEST_DATABASE_URL"

    static func serverURL() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment["FARM_TEST_DATABASE_URL"] else {
            throw ConfigurationError("FARM_TEST_DATABASE_URL is not set: run the tests with `make test`")
        }
        return try DatabaseURL(text)
    }

    /// Creates an empty database with a unique name.
    package static func create() async throws -> TestDatabase {
        let server = try self.serverURL()
        let name = "farm_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try await withPostgresClient(server) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: testLogger)
        }
        return TestDatabase(url: server.with(database: name))
    }

    /// Runs `body` with a fresh database, and drops the database whatever happens: `body` returns, throws, or a
    /// `#require` in it fails.
    package static func with<Result>(_ body: (TestDatabase) async throws -> Result) async throws -> Result {
        let database = try await Self.create()
        do {
            let result = try await body(database)
            await database.drop()
            return result
        } catch {
            await database.drop()
            throw error
        }
    }

    /// The URL to pass to `farm … --database-url`, password included.
    package var connectionString: String { self.url.text(revealingPassword: true) }

    package func drop() async {
        guard let server = try? Self.serverURL() else { return }
        try? await withPostgresClient(server) { client in
            _ = try await client.query(
                PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(self.url.database) WITH (FORCE)"),
                logger: testLogger
            )
        }
    }
}

package let testLogger: Logger = {
    var logger = Logger(label: "farm.test")
    logger.logLevel =
        ProcessInfo.processInfo.environment["FARM_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    return logger
}()

/// Runs `body` with a running client for `url`.
package func withPostgresClient<Result: Sendable>(
    _ url: DatabaseURL,
    _ body: @Sendable (PostgresClient) async throws -> Result
) async throws -> Result {
    let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: testLogger)
    let watch = TeardownWatch("postgres client for \(url.database)")
    defer { watch.ended() }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await watch.track("postgres client") { await client.run() } }
        defer {
            group.cancelAll()
            watch.cancelled()
        }
        return try await body(client)
    }
}
