import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// Thumbnails are made while the job encodes, not after its last task; a job whose thumbnails cannot be made fails
/// with the reason instead of becoming ready without them, and the janitor's cleanup then removes what it wrote.
@Suite("Thumbnails through a real farm", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct ThumbnailsThroughAFarmTests {
    /// A 4 s 320×240 clip submitted (2 s segments) to an in-process farm of `agents` agents on a fresh database;
    /// `prepare` gets the output folder first.
    static func withSubmittedClip(
        agents: Int,
        prepare: (String) throws -> Void = { _ in },
        _ body: @escaping @Sendable (_ store: JobStore, _ job: Int64, _ output: String) async throws -> Void
    ) async throws {
        try await TestDatabase.with { database in
            try await Fixtures.withClip("farm-thumbs", seconds: 4, width: 320, height: 240) { directory, source in
                let output = directory.file("out")
                try prepare(output)
                try await InProcessFarm.run(database: database, agents: agents) { store, _ in
                    let job = try await store.submit(
                        source: source,
                        outputDirectory: output,
                        settings: JobSettings(segmentDuration: 2)
                    )
                    try await body(store, job, output)
                }
            }
        }
    }

    /// With no agent at all, nothing is encoded: the poster and thumbnails still appear once the job is planned.
    @Test func thumbnailsAreMadeBeforeAnyTaskIsDone() async throws {
        try await Self.withSubmittedClip(agents: 0) { store, job, output in
            let deadline = ContinuousClock.now + .seconds(30)
            func made() -> Bool {
                JobThumbnails.names.allSatisfy { FileManager.default.fileExists(atPath: "\(output)/\($0)") }
            }
            while !made(), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(made(), "no thumbnails within 30 s of submitting")
            let status = try #require(try await store.status(jobID: job))
            #expect(status.state == .running)
            #expect(status.tasksDone == 0 && status.tasksTotal > 0)
        }
    }

    @Test func aJobWhosePosterCannotBeWrittenFailsAndIsCleanedUp() async throws {
        // A folder where poster.jpg must go: the poster cannot be written.
        try await Self.withSubmittedClip(
            agents: 1,
            prepare: { output in
                try FileManager.default.createDirectory(
                    atPath: output + "/poster.jpg",
                    withIntermediateDirectories: true
                )
            }
        ) { store, job, output in
            let status = try await InProcessFarm.waitForJob(store, job)
            #expect(status.state == .failed)
            #expect(
                status.error?.contains("making the poster and thumbnails failed") == true,
                "\(status.error ?? "no error")"
            )
            #expect(!FileManager.default.fileExists(atPath: output + "/master.m3u8"))
            // The coordinator's janitor may have got there first; either way, only the folder farm did not make
            // is left.
            _ = try await store.cleanNextEndedJob { folder, files in
                try Stitcher.removePartialOutput(outputDirectory: folder, publishedFiles: files)
            }
            let deadline = ContinuousClock.now + .seconds(10)
            var left = try FileManager.default.contentsOfDirectory(atPath: output)
            while left != ["poster.jpg"], ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                left = try FileManager.default.contentsOfDirectory(atPath: output)
            }
            #expect(left == ["poster.jpg"], "left in the output folder: \(left)")
        }
    }
}
