import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// One output folder, one running job: a second job into a folder that a running job writes is refused with that
/// job named, and cleaning up after an ended job never touches files that a resubmission into its folder now owns.
@Suite("Output folders", .requiresPostgreSQL, .farmTimeLimit)
struct OutputFolderTests {
    @Test func aFolderBelongsToOneRunningJob() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                let store = JobStore(client: client, logger: testLogger)
                let first = try await store.submit(
                    source: "/in/a.mp4",
                    outputDirectory: "/out/a",
                    settings: JobSettings()
                )
                await #expect {
                    try await store.submit(source: "/in/b.mp4", outputDirectory: "/out/a", settings: JobSettings())
                } throws: { error in
                    "\(error)"
                        == "the output folder /out/a is in use by job \(first) (submitted); choose another folder, or "
                        + "wait for job \(first) to end (or cancel it) to replace its output"
                }
                #expect(try await store.cancel(jobID: first))
                let second = try await store.submit(
                    source: "/in/b.mp4",
                    outputDirectory: "/out/a",
                    settings: JobSettings()
                )
                #expect(second > first)

                // The cancelled job's cleanup leaves the folder to the resubmission, and is still marked done.
                let removed = Mutex(false)
                let cleaned = try await store.cleanNextEndedJob { _, _ in removed.withLock { $0 = true } }
                #expect(cleaned == first)
                #expect(!removed.withLock { $0 }, "the resubmission's files were left alone")
                #expect(try await store.cleanNextEndedJob { _, _ in } == nil)

                // An output that is ready may be replaced by a new job (`make run` twice).
                _ = try await client.query(
                    "UPDATE jobs SET state = \(JobState.ready) WHERE id = \(second)",
                    logger: testLogger
                )
                let third = try await store.submit(
                    source: "/in/c.mp4",
                    outputDirectory: "/out/a",
                    settings: JobSettings()
                )
                #expect(third > second)
            }
        }
    }

    /// Sixteen submits at once into each of five folders, through as many connections: exactly one job per folder,
    /// and every other submit is refused naming that job.
    @Test func concurrentSubmitsIntoOneFolderMakeExactlyOneJob() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                let store = JobStore(client: client, logger: testLogger)
                let folders = (0..<5).map { "/out/race-\($0)" }
                let outcomes = await withTaskGroup(of: (String, Result<Int64, any Error>).self) { group in
                    for folder in folders {
                        for attempt in 0..<16 {
                            group.addTask {
                                do {
                                    let id = try await store.submit(
                                        source: "/in/\(attempt).mp4",
                                        outputDirectory: folder,
                                        settings: JobSettings()
                                    )
                                    return (folder, .success(id))
                                } catch {
                                    return (folder, .failure(error))
                                }
                            }
                        }
                    }
                    return await group.reduce(into: [(String, Result<Int64, any Error>)]()) { $0.append($1) }
                }
                for folder in folders {
                    let results = outcomes.filter { $0.0 == folder }.map(\.1)
                    let made = results.compactMap { try? $0.get() }
                    #expect(made.count == 1, "\(folder): \(made.count) jobs made")
                    for case .failure(let error) in results {
                        let refusal = error as? OutputFolderInUse
                        #expect(refusal != nil, "\(folder): \(error)")
                        #expect(refusal?.jobID == made.first, "\(folder): the refusal names another job")
                    }
                }
                let rows = try await client.query(
                    "SELECT output_dir, count(*) FROM jobs GROUP BY output_dir ORDER BY output_dir",
                    logger: testLogger
                )
                var jobs: [String: Int64] = [:]
                for try await (folder, count) in rows.decode((String, Int64).self) { jobs[folder] = count }
                #expect(jobs == Dictionary(uniqueKeysWithValues: folders.map { ($0, 1) }))
            }
        }
    }

    /// The database itself refuses a second running job in a folder, whoever inserts it: a submit that starts while
    /// another's insert is not committed yet waits for it, then is refused naming it (no check-then-insert race).
    @Test func theDatabaseHoldsTheFolderForTheFirstInsertEvenBeforeItCommits() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                let store = JobStore(client: client, logger: testLogger)
                let inserted = AsyncStream<Int64>.makeStream()
                async let first: Int64 = client.withTransaction(logger: testLogger) { connection in
                    var id: Int64 = 0
                    let rows = try await connection.query(
                        "INSERT INTO jobs (source, output_dir, settings) VALUES ('/in/a.mp4', '/out/held', '{}') RETURNING id",
                        logger: testLogger
                    )
                    for try await value in rows.decode(Int64.self) { id = value }
                    inserted.continuation.yield(id)
                    // Holds the insert uncommitted while the second submit runs into it.
                    try await Task.sleep(for: .milliseconds(500))
                    return id
                }
                var ids = inserted.stream.makeAsyncIterator()
                let held = try #require(await ids.next())
                let started = ContinuousClock.now
                await #expect {
                    try await store.submit(source: "/in/b.mp4", outputDirectory: "/out/held", settings: JobSettings())
                } throws: { error in
                    (error as? OutputFolderInUse)?.jobID == held
                }
                #expect(ContinuousClock.now - started >= .milliseconds(300), "the second submit waited for the first")
                #expect(try await first == held)

                await #expect {
                    try await client.query(
                        "INSERT INTO jobs (source, output_dir, settings) VALUES ('/in/c.mp4', '/out/held', '{}')",
                        logger: testLogger
                    )
                } throws: { error in
                    (error as? PSQLError)?.serverInfo?[.sqlState] == "23505"
                }
            }
        }
    }

    /// A database that already holds two running jobs in one folder (submitted before migration 4) is mended by the
    /// migration: the later job fails with what to do, the earlier keeps the folder.
    @Test func migrationFourFailsTheLaterOfTwoJobsInOneFolder() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger, upTo: 3)
                for source in ["/in/a.mp4", "/in/b.mp4"] {
                    _ = try await client.query(
                        "INSERT INTO jobs (source, output_dir, settings) VALUES (\(source), '/out/twice', '{}')",
                        logger: testLogger
                    )
                }
                try await Migrations.migrate(client, logger: testLogger)
                let rows = try await client.query(
                    "SELECT source, state, error FROM jobs ORDER BY id",
                    logger: testLogger
                )
                var jobs: [(String, JobState, String?)] = []
                for try await row in rows.decode((String, JobState, String?).self) { jobs.append(row) }
                #expect(jobs.map(\.0) == ["/in/a.mp4", "/in/b.mp4"])
                #expect(jobs.map(\.1) == [.submitted, .failed])
                #expect(jobs.last?.2?.contains("another job was writing the same output folder") == true)
            }
        }
    }
}
