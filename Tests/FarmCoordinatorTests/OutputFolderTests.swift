import FarmCoordinator
import FarmTestSupport
import Foundation
import Synchronization
import Testing

/// One output folder, one job: a second job into a folder that a live or ready job owns is refused with the owner
/// named, and cleaning up after a failed job never touches files that a resubmission into its folder now owns.
@Suite(
    "Output folders",
    .enabled(if: TestDatabase.isAvailable, "needs PostgreSQL: run make test, or set FARM_TEST_DATABASE_URL")
)
struct OutputFolderTests {
    @Test func aFolderBelongsToOneJobUntilItEnds() async throws {
        let database = try await TestDatabase.create()
        try await withPostgresClient(database.url) { client in
            try await Migrations.migrate(client, logger: testLogger)
            let store = JobStore(client: client, logger: testLogger)
            let first = try await store.submit(source: "/in/a.mp4", outputDirectory: "/out/a", settings: JobSettings())
            await #expect {
                try await store.submit(source: "/in/b.mp4", outputDirectory: "/out/a", settings: JobSettings())
            } throws: { error in
                "\(error)"
                    == "the output folder /out/a belongs to job \(first) (submitted); choose another folder, or "
                    + "cancel job \(first) first if it should be replaced"
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
        }
        await database.drop()
    }
}
