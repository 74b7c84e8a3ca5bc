import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

@Suite(
    "Bad input through a real farm",
    // One at a time: Foundation's Process (ffmpeg in `run`) hangs here when several tests spawn children at once.
    .serialized,
    .enabled(if: TestDatabase.isAvailable, "needs PostgreSQL: run make test, or set FARM_TEST_DATABASE_URL")
)
struct BadInputTests {
    @Test func randomBytesFailTheirJobAndTheFarmKeepsServing() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let garbage = directory.file("upload-7.mp4")
        try Fixtures.makeGarbage(at: garbage)
        let good = directory.file("good.mp4")
        try Fixtures.makeClip(at: good, seconds: 4, width: 320, height: 240)

        try await InProcessFarm.run(database: database, agents: 1) { store, _ in
            let bad = try await store.submit(
                source: garbage,
                outputDirectory: directory.file("bad-out"),
                settings: JobSettings(segmentDuration: 2)
            )
            let failed = try await InProcessFarm.waitForJob(store, bad)
            #expect(failed.state == "failed")
            let error = try #require(failed.error)
            #expect(error.contains(garbage), "the error names the file: \(error)")
            #expect(error.contains("not a readable video file"), "the error names the cause: \(error)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("bad-out/master.m3u8")))

            let next = try await store.submit(
                source: good,
                outputDirectory: directory.file("good-out"),
                settings: JobSettings(segmentDuration: 2)
            )
            let ready = try await InProcessFarm.waitForJob(store, next)
            #expect(ready.state == "ready", "\(ready.error ?? "")")
            #expect(try Probe.videoFrameCount(directory.file("good-out/240p/playlist.m3u8")) == 100)
        }
        await database.drop()
    }

    @Test func aMissingFileFailsWithItsPath() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("never-uploaded.mov")
        try await InProcessFarm.run(database: database, agents: 1) { store, _ in
            let job = try await store.submit(
                source: missing,
                outputDirectory: directory.file("out"),
                settings: JobSettings()
            )
            let status = try await InProcessFarm.waitForJob(store, job)
            #expect(status.state == "failed")
            #expect(status.error?.contains("\(missing): no such file") == true, "\(status.error ?? "")")
        }
        await database.drop()
    }

    /// A file whose index (moov first, as phones upload) lists frames that the cut-off file no longer has fails
    /// with "truncated" before any chunk runs, instead of as a decoder error on the last chunk.
    @Test func aTruncatedUploadFailsWithTheCauseNamed() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let whole = directory.file("whole.mp4")
        let path = directory.file("truncated.mp4")
        try Fixtures.makeClip(at: whole, seconds: 4, width: 320, height: 240)
        try run(
            "ffmpeg",
            ["-nostdin", "-v", "error", "-y", "-i", whole, "-c", "copy", "-movflags", "+faststart", path + ".tmp.mp4"]
        )
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path + ".tmp.mp4"))
        try bytes.prefix(bytes.count * 7 / 10).write(to: URL(fileURLWithPath: path))
        try await InProcessFarm.run(database: database, agents: 1) { store, _ in
            let job = try await store.submit(
                source: path,
                outputDirectory: directory.file("out"),
                settings: JobSettings(segmentDuration: 2)
            )
            let status = try await InProcessFarm.waitForJob(store, job)
            #expect(status.state == "failed")
            let error = status.error ?? ""
            #expect(error.contains(path), "the error names the file: \(error)")
            #expect(error.contains("the file is truncated"), "the error names the cause: \(error)")
            #expect(status.tasksTotal == 0, "no chunk was planned")
        }
        await database.drop()
    }
}
