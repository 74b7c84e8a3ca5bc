import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite("Managed local PostgreSQL")
struct LocalPostgresTests {
    /// The all-in-one mode's first run on a machine: initdb, start, create the database, serve, stop. (This once
    /// hung forever: the started server inherited what the launcher waited on.)
    @Test(.timeLimit(.minutes(1))) func startsFromNothingServesAndStops() async throws {
        let directory = try TemporaryDirectory("farm-local-pg")
        defer { directory.remove() }
        let server = LocalPostgres(stateDirectory: directory.path + "/postgres")
        #expect(try server.start(), "a fresh folder means this call started the server")
        #expect(try server.start() == false, "a running server is reused")
        try await withPostgresClient(server.url) { client in
            for try await value in try await client.query("SELECT 41 + 1", logger: testLogger).decode(Int.self) {
                #expect(value == 42)
            }
        }
        server.stop()
        #expect(try server.start(), "after stop, start starts it again")
        server.stop()
    }
}
