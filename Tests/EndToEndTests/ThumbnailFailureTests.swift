import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// A job whose thumbnails cannot be made fails with the reason instead of becoming ready without them, and the
/// janitor's cleanup then removes everything the farm wrote for it.
@Suite("Thumbnail failures through a real farm", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct ThumbnailFailureTests {
    @Test func aJobWhosePosterCannotBeWrittenFailsAndIsCleanedUp() async throws {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory("farm-thumbs")
            defer { directory.remove() }
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240)
            let output = directory.file("out")
            // A folder where poster.jpg must go: every encode succeeds, the poster cannot be written.
            try FileManager.default.createDirectory(atPath: output + "/poster.jpg", withIntermediateDirectories: true)
            try await InProcessFarm.run(database: database, agents: 1) { store, _ in
                let job = try await store.submit(
                    source: source,
                    outputDirectory: output,
                    settings: JobSettings(segmentDuration: 2)
                )
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
}
