import FarmCoordinator
import FarmTestSupport
import Foundation
import Synchronization
import Testing

/// One output folder, one running job: a second job into a folder that a running job writes is refused with that
/// job named, and cleaning up after an ended job never touches files that a resubmission into its folder now owns.
@Suite(
    "Output folders",
    .requiresPostgreSQL,
    .farmTimeLimit
)
struct OutputFolderTests {
    @Test func aFolderBelongsToOneRunningJob() async throws {
        let database = try await TestDatabase.create()
        try await withPostgresClient(database.url) { client in
            try await Migrations.migrate(client, logger: testLogger)
            let store = JobStore(client: client, logger: testLogger)
            let first = try await store.submit(source: "/in/a.mp4", outputDirectory: "/out/a", settings: JobSettings())
            await #expect {
                try await store.submit(source: "/in/b.mp4", outputDirectory: "/out/a", settings: JobSettings())
            } throws: { error in
                "\(error)"
                    == "the output folder /out/a is in use by job \(first) (submitted); choose another folder, or "
                    + "wait for job \(first) to end (or cancel it) to replace its output"
            }
            #expect(try await store.cancel(jobID: first))
            let second = try await store.submit(source: "/in/b.mp4", outputDirectory: "/out/a", settings: JobSettings())
            #expect(second > first)

            // The cancelled job's cleanup leaves the folder to the resubmission, and is still marked done.
            let removed = Mutex(false)
            let cleaned = try await store.cleanNextEndedJob { _, _ in removed.withLock { $0 = true } }
            #expect(cleaned == first)
            #expect(!removed.withLock { $0 }, "the resubmission's files were left alone")
            #expect(try await store.cleanNextEndedJob { _, _ in } == nil)

            // An output that is ready may be replaced by a new job (`make run` twice).
            _ = try await client.query("UPDATE jobs SET state = 'ready' WHERE id = \(second)", logger: testLogger)
            let third = try await store.submit(source: "/in/c.mp4", outputDirectory: "/out/a", settings: JobSettings())
            #expect(third > second)
        }
        await database.drop()
    }
}
