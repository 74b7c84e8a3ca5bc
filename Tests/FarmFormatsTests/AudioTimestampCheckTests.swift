import FarmFormats
import Testing

@Suite("Audio timestamp check")
struct AudioTimestampCheckTests {
    /// AAC frames of 1024 samples at 48 kHz, starting at `start` seconds, `count` of them.
    static func frames(from start: Double, count: Int) -> [(start: Double, duration: Double)] {
        let duration = 1024.0 / 48_000
        return (0..<count).map { (start + Double($0) * duration, duration) }
    }

    static func problem(
        _ packets: [(start: Double, duration: Double)],
        videoEnd: Double
    ) -> AudioTimestampCheck.Problem? {
        var check = AudioTimestampCheck()
        for packet in packets { check.add(start: packet.start, duration: packet.duration) }
        return check.problem(videoEnd: videoEnd)
    }

    @Test func whatRealFilesHoldPasses() {
        // Contiguous audio a little longer than the video.
        #expect(Self.problem(Self.frames(from: 0, count: 500), videoEnd: 10) == nil)
        // A seam of clips joined by stream copy: the next clip starts one frame and its priming early.
        let seam = Self.frames(from: 0, count: 100) + Self.frames(from: 100 * 1024.0 / 48_000 - 0.045, count: 100)
        #expect(Self.problem(seam, videoEnd: 5) == nil)
        // Audio lost for 3 s in the middle of a capture: silence, as a player plays it.
        let lost = Self.frames(from: 0, count: 100) + Self.frames(from: 5, count: 100)
        #expect(Self.problem(lost, videoEnd: 8) == nil)
        // Audio that runs on contiguously after the video ends.
        #expect(Self.problem(Self.frames(from: 0, count: 1000), videoEnd: 4) == nil)
    }

    /// One packet stamped an hour late, the rest right: followed, an hour of silence, then every packet dropped.
    @Test func onePacketAnHourLateIsFound() {
        var packets = Self.frames(from: 0, count: 200)
        packets[50].start += 3600
        let problem = Self.problem(packets, videoEnd: 5)
        #expect(problem == .jumpsBack(from: packets[50].start + packets[50].duration, to: packets[51].start))
        #expect("\(problem!)".contains("jump back from 3601."))
    }

    @Test func aClockThatGoesBackIsFound() {
        let packets = Self.frames(from: 0, count: 200) + Self.frames(from: 1, count: 100)
        guard case .jumpsBack(let from, let to) = Self.problem(packets, videoEnd: 5) else {
            Issue.record("a jump back of 3.3 s is found")
            return
        }
        #expect(abs(from - 200 * 1024.0 / 48_000) < 1e-9)
        #expect(to == 1)
    }

    /// The last packets stamped far late: nothing after them to go back, but they land past the video.
    @Test func aJumpPastTheVideosEndIsFound() {
        let packets = Self.frames(from: 0, count: 200) + Self.frames(from: 600, count: 2)
        let end = 200 * 1024.0 / 48_000
        #expect(Self.problem(packets, videoEnd: 4.3) == .jumpsPastTheVideo(from: end, to: 600, videoEnd: 4.3))
        // The whole track an hour late (a damaged MPEG-TS): it starts past the video.
        #expect(
            Self.problem(Self.frames(from: 3600, count: 100), videoEnd: 5)
                == .startsPastTheVideo(start: 3600, videoEnd: 5)
        )
        // Landing within a second of the video's end is a gap inside it.
        #expect(Self.problem(Self.frames(from: 0, count: 100) + Self.frames(from: 5, count: 2), videoEnd: 4.5) == nil)
    }
}
