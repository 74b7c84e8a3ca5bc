import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite("Schema migrations", .requiresPostgreSQL, .farmTimeLimit)
struct MigrationsTests {
    @Test func aVersion1DatabaseIsUpgradedAndServesJobs() async throws {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger, upTo: 1)
                try await Migrations.migrate(client, logger: testLogger)
                // Twice more, as several coordinators starting together would: nothing is applied again.
                try await Migrations.migrate(client, logger: testLogger)
                var versions: [Int] = []
                for try await version in try await client.query(
                    "SELECT version FROM schema_migrations ORDER BY version",
                    logger: testLogger
                )
                .decode(Int.self) {
                    versions.append(version)
                }
                #expect(versions == Migrations.all.map(\.version))
                let store = JobStore(client: client, logger: testLogger)
                let source = directory.file("clip.mp4")
                try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240)
                _ = try await store.submit(
                    source: source,
                    outputDirectory: directory.file("out"),
                    settings: JobSettings(segmentDuration: 2)
                )
                let planned = try await store.planNextJob { try await JobPlanning.plan($0) }
                #expect(planned?.error == nil)
                #expect(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) != nil)
            }
        }
    }

    /// Migration 6 copies each job's priority to its tasks, where the lease's index reads it: the queued tasks of a
    /// high-priority job, planned before the upgrade, keep coming first after it.
    @Test func tasksPlannedBeforeTheQueueIndexKeepTheirJobsPriority() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger, upTo: 5)
                _ = try await client.query(
                    """
                    WITH job AS (
                        INSERT INTO jobs (state, source, output_dir, settings, priority)
                        VALUES ('running', '/a.mp4', '/out/a', '{}', 0), ('running', '/b.mp4', '/out/b', '{}', 7)
                        RETURNING id
                    )
                    INSERT INTO tasks (job_id, kind, spec, priority) SELECT id, 'video', '{}', 1 FROM job
                    """,
                    logger: testLogger
                )
                try await Migrations.migrate(client, logger: testLogger)
                var copied: [String: Int] = [:]
                for try await (source, priority) in try await client.query(
                    "SELECT j.source, t.job_priority FROM tasks t JOIN jobs j ON j.id = t.job_id",
                    logger: testLogger
                ).decode((String, Int).self) {
                    copied[source] = priority
                }
                #expect(copied == ["/a.mp4": 0, "/b.mp4": 7])
            }
        }
    }

    @Test func aDatabaseFromANewerFarmIsRefusedWithWhatToDo() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                _ = try await client.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
                    logger: testLogger
                )
                do {
                    try await Migrations.migrate(client, logger: testLogger)
                    Issue.record("a newer schema was accepted")
                } catch {
                    #expect("\(error)".contains("schema is at version 999"), "\(error)")
                    #expect("\(error)".contains("upgrade farm"), "\(error)")
                }
            }
        }
    }
}
