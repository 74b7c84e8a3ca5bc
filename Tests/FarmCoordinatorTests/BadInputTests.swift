import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

@Suite(
    "Bad input through a real farm",
    // One at a time: each test runs a whole farm, and two at once only slow each other down.
    .serialized,
    .requiresPostgreSQL,
    .farmTimeLimit
)
struct BadInputTests {
    @Test func randomBytesFailTheirJobAndTheFarmKeepsServing() async throws {
        try await TestDatabase.with { database in
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
                #expect(failed.state == .failed)
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
                #expect(ready.state == .ready, "\(ready.error ?? "")")
                #expect(try Probe.videoFrameCount(directory.file("good-out/240p/playlist.m3u8")) == 100)
            }
        }
    }

    @Test func aMissingFileFailsWithItsPath() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.file("never-uploaded.mov")
        let status = try await Self.finalStatus(of: missing, in: directory)
        #expect(status.state == .failed)
        #expect(status.error?.contains("\(missing): no such file") == true, "\(status.error ?? "")")
    }

    /// A file whose index (moov first, as phones upload) lists frames that the cut-off file no longer has fails
    /// with "truncated" before any chunk runs, instead of as a decoder error on the last chunk.
    @Test func aTruncatedUploadFailsWithTheCauseNamed() async throws {
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
        let status = try await Self.finalStatus(of: path, in: directory)
        #expect(status.state == .failed)
        let error = status.error ?? ""
        #expect(error.contains(path), "the error names the file: \(error)")
        #expect(error.contains("the file is truncated"), "the error names the cause: \(error)")
        #expect(status.tasksTotal == 0, "no chunk was planned")
    }

    struct BadUpload: CustomTestStringConvertible, Sendable {
        var name: String
        /// Writes the upload at the given path.
        var make: @Sendable (String) throws -> Void
        /// What the job's error must say.
        var cause: String
        var testDescription: String { self.name }
    }

    static let badUploads = [
        BadUpload(
            name: "empty.mp4",
            make: { try Data().write(to: URL(fileURLWithPath: $0)) },
            cause: "the file is empty"
        ),
        BadUpload(
            name: "notes.mp4",
            make: { try Data("<html><body>502 Bad Gateway</body></html>\n".utf8).write(to: URL(fileURLWithPath: $0)) },
            cause: "this is a text file, not a video"
        ),
        BadUpload(
            name: "podcast.m4a",
            make: {
                try run(
                    "ffmpeg",
                    ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", $0]
                )
            },
            cause: "no video stream"
        ),
        // One audio packet stamped an hour late (a damaged capture): the copy of the source for the audio task
        // refused it, five times, with libav's "Invalid argument".
        Self.audioClockDamaged(
            name: "audio-clock-jumps.mkv",
            stamps: "if(eq(N\\,50)\\,PTS+3600/TB\\,PTS)",
            cause: "the audio's timestamps jump back from"
        ),
        // The last audio packets stamped an hour late: followed, an hour of silence was published as ready.
        Self.audioClockDamaged(
            name: "audio-ends-an-hour-late.mkv",
            stamps: "if(gt(N\\,120)\\,PTS+3600/TB\\,PTS)",
            cause: "past the video's end"
        ),
    ]

    /// A 3 s clip whose audio timestamps are rewritten by `stamps` (a `setts` expression), as a damaged capture has them.
    static func audioClockDamaged(name: String, stamps: String, cause: String) -> BadUpload {
        BadUpload(
            name: name,
            make: { path in
                let clean = path + ".clean.mp4"
                try Fixtures.makeClip(at: clean, seconds: 3, width: 320, height: 240)
                try run(
                    "ffmpeg",
                    ["-nostdin", "-v", "error", "-y", "-i", clean, "-c", "copy", "-bsf:a", "setts=pts=" + stamps, path]
                )
            },
            cause: cause
        )
    }

    @Test(arguments: Self.badUploads)
    func aBadUploadFailsWithItsCauseNamed(_ upload: BadUpload) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file(upload.name)
        try upload.make(path)
        let status = try await Self.finalStatus(of: path, in: directory)
        #expect(status.state == .failed)
        let error = status.error ?? ""
        #expect(error.contains(path), "the error names the file: \(error)")
        #expect(error.contains(upload.cause), "the error names the cause: \(error)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("out/master.m3u8")))
    }

    /// Submits `source` to a fresh farm with one agent and returns the job's final status.
    private static func finalStatus(of source: String, in directory: TemporaryDirectory) async throws -> JobStatus {
        try await InProcessFarm.transcode(
            source,
            into: directory.file("out"),
            settings: JobSettings(segmentDuration: 2),
            agents: 1
        )
    }
}
