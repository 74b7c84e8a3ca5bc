import FarmAgent
import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

enum PlayerTools {
    /// True when the tools are configured, or when running in CI (where a missing tool must fail, not skip).
    static var isAvailable: Bool {
        ProcessInfo.processInfo.environment["FARM_TEST_PYTHON"] != nil
            || ProcessInfo.processInfo.environment["CI"] != nil
    }
}

/// Real players against a real farm's output: the `m3u8` parser from PyPI loads every playlist, and headless
/// Chromium plays the master playlist to the end. The scripts live in `Tests/players/`; `make test` provides their
/// Python (`FARM_TEST_PYTHON`, see `deploy/python-env.sh`) and Chromium (`deploy/install-deps.sh`).
@Suite(
    "Players",
    .serialized,
    .requiresPostgreSQL,
    .farmTimeLimit,
    .enabled(
        if: PlayerTools.isAvailable,
        "needs the player tools: run make test, or set FARM_TEST_PYTHON to a python with m3u8 installed"
    )
)
struct PlayersTests {
    /// The source lasts 8 s; the ladder stops at its height, 360p, so the output has the 240p and 360p variants.
    static let seconds = 8.0
    static let variants = 2
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("players").path

    static func python() throws -> String {
        guard let python = ProcessInfo.processInfo.environment["FARM_TEST_PYTHON"] else {
            throw ConfigurationError(
                "FARM_TEST_PYTHON is not set: run the tests with `make test` (deploy/python-env.sh makes it)"
            )
        }
        return python
    }

    /// Runs one of `Tests/players/`'s scripts with the test Python; throws its standard error when it fails.
    @discardableResult
    static func script(_ name: String, _ arguments: [String]) throws -> String {
        try run(try Self.python(), ["\(Self.scripts)/\(name)"] + arguments)
    }

    /// Transcodes an 8 s 640x360 test pattern with a tone through a farm with two agents, into `directory/out`.
    static func transcode(in directory: TemporaryDirectory, container: SegmentContainer) async throws -> String {
        _ = try Self.python()
        let source = directory.file("source.mp4")
        try Fixtures.makeClip(at: source, seconds: Self.seconds, width: 640, height: 360)
        let output = directory.file("out")
        let status = try await InProcessFarm.transcode(
            source,
            into: output,
            settings: JobSettings(segmentDuration: 2, minimumChunks: 3, container: container)
        )
        try #require(status.state == .ready, "the job ended \(status.state): \(status.error ?? "")")
        return output
    }

    /// Runs `body` with a fresh farm output folder, removed afterwards.
    static func withOutput(container: SegmentContainer = .fmp4, _ body: (String) throws -> Void) async throws {
        let directory = try TemporaryDirectory("farm-players")
        defer { directory.remove() }
        try body(try await Self.transcode(in: directory, container: container))
    }

    @Test("the m3u8 parser loads every playlist and finds the variants, the audio group and the I-frame playlists")
    func playlistsLoadInTheParser() async throws {
        try await Self.withOutput { output in
            try Self.script(
                "check_playlists.py",
                [output, "--variants", "\(Self.variants)", "--duration", "\(Self.seconds)", "--expect-iframes"]
            )
        }
    }

    @Test(
        "headless Chromium plays the master playlist to the end, pictures and sound",
        arguments: [SegmentContainer.fmp4, .ts]
    )
    func chromiumPlaysToTheEnd(_ container: SegmentContainer) async throws {
        try await Self.withOutput(container: container) { output in
            let report = try Self.script(
                "play_in_chromium.py",
                [output, "--duration", "\(Self.seconds)", "--expect-audio"]
            )
            #expect(report.contains("to the end"), "\(report)")
        }
    }

    /// libavformat (ffmpeg, ffprobe, mpv, VLC) reads the ladder as a browser does: through each media playlist, every
    /// picture at its source time, counted from where the sound starts (both start at the job's first frame). B-frames
    /// with negative composition offsets break this: libavformat shows them as late as the deepest offset it has met
    /// so far (its `dts_shift`), so pictures lag the sound, and by more from the first segment that reorders deeper.
    @Test("ffmpeg reads every rendition through its playlist at the source's frame times, in step with the audio")
    func libavformatReadsTheSourceTimes() async throws {
        try await Self.withOutput { output in
            let folder = URL(fileURLWithPath: output)
            let source = try Probe.framePresentationTimes(
                folder.deletingLastPathComponent().appendingPathComponent("source.mp4").path
            )
            let audio = try Probe.framePresentationTimes(
                folder.appendingPathComponent("audio/playlist.m3u8").path,
                stream: "a:0"
            )
            // The first sound follows the AAC encoder's priming (1024 samples at 48 kHz); the job's B-frames delay
            // every picture by more than that, so it is shown with the first picture.
            let audioStart = try #require(audio.first, "the audio playlist reads as no packet") + 1024.0 / 48000
            let sourceStart = try #require(source.first)
            for rung in ["240p", "360p"] {
                let times = try Probe.framePresentationTimes(
                    folder.appendingPathComponent("\(rung)/playlist.m3u8").path
                )
                #expect(times.count == source.count, "\(rung): \(times.count) frames, the source has \(source.count)")
                let misplaced = zip(times, source).enumerated().filter { _, pair in
                    abs((pair.0 - audioStart) - (pair.1 - sourceStart)) > 0.001
                }
                let first = misplaced.first.map { (frame, pair) in
                    "frame \(frame) at \(pair.0 - audioStart) s, the source's at \(pair.1 - sourceStart) s"
                }
                let misplacedCount = misplaced.count
                #expect(
                    misplacedCount == 0,
                    "\(rung): \(misplaced.count) frames not at their source time from the audio's start, the first: \(first ?? "")"
                )
            }
        }
    }

    /// The checks above can fail: with one segment gone from every video rung, both scripts exit 1 and say why.
    @Test("a missing segment fails the parser check and playback")
    func missingSegmentFailsBothChecks() async throws {
        try await Self.withOutput { output in
            let rungs = ["240p", "360p"]
            for rung in rungs {
                try FileManager.default.removeItem(atPath: "\(output)/\(rung)/segment_00002.m4s")
            }
            let parser = try #require(throws: CommandFailed.self) {
                try Self.script("check_playlists.py", [output, "--variants", "\(Self.variants)"])
            }
            #expect(parser.status == 1)
            for rung in rungs {
                let message = "\(rung)/playlist.m3u8: segment 2 (segment_00002.m4s): the file does not exist"
                #expect(parser.standardError.contains(message), "\(parser.standardError)")
            }
            let player = try #require(throws: CommandFailed.self) {
                try Self.script("play_in_chromium.py", [output, "--duration", "\(Self.seconds)", "--expect-audio"])
            }
            #expect(player.status == 1)
            #expect(player.standardError.contains("FAILED: media error"), "\(player.standardError)")
            #expect(player.standardError.contains("segment_00002.m4s"), "\(player.standardError)")
        }
    }

    /// Progressive playback: agents slowed to 100 ms a frame keep a 12 s job running for a while; Chromium starts
    /// playing its master playlist (EVENT media playlists) before the job is ready, and the same folder plays to the
    /// end once it is.
    @Test("Chromium plays a running job's master playlist before the job is ready, then to the end")
    func chromiumPlaysARunningJob() async throws {
        _ = try Self.python()
        let directory = try TemporaryDirectory("farm-progressive")
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        let seconds = 12.0
        try Fixtures.makeClip(at: source, seconds: seconds, width: 640, height: 360)
        let output = directory.file("out")
        try await InProcessFarm.run(agents: 2, agentFaults: FaultInjection(frameDelay: .milliseconds(100))) {
            store,
            _ in
            let job = try await store.submit(
                source: source,
                outputDirectory: output,
                settings: JobSettings(segmentDuration: 2, minimumChunks: 6)
            )
            let deadline = ContinuousClock.now + .seconds(60)
            while !FileManager.default.fileExists(atPath: "\(output)/master.m3u8"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let playlist = try String(contentsOfFile: "\(output)/240p/playlist.m3u8", encoding: .utf8)
            #expect(playlist.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !playlist.contains("#EXT-X-ENDLIST"))
            let playing = try Self.script("play_in_chromium.py", [output, "--until-playing", "1"])
            #expect(playing.contains("is playing"), "\(playing)")
            let during = try #require(try await store.status(jobID: job))
            #expect(during.state == .running, "the job was \(during.state) once Chromium played: too late to tell")
            let status = try await InProcessFarm.waitForJob(store, job)
            try #require(status.state == .ready, "the job ended \(status.state): \(status.error ?? "")")
            let ended = try Self.script(
                "play_in_chromium.py",
                [output, "--duration", "\(seconds)", "--expect-audio"]
            )
            #expect(ended.contains("to the end"), "\(ended)")
        }
    }
}
