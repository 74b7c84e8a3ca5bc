import FarmFormats
import Testing

@Suite("Audio timeline")
struct AudioTimelineTests {
    /// Places frames and returns what each placement was and where the timeline ends.
    static func place(_ frames: [(start: Int64?, count: Int64)]) -> (placements: [AudioTimeline.Placement], end: Int64?)
    {
        var timeline = AudioTimeline(tolerance: 480)
        let placements = frames.map { timeline.place(start: $0.start, count: $0.count) }
        return (placements, timeline.end)
    }

    @Test func contiguousFramesAreTakenWhole() {
        let result = Self.place([(0, 1024), (1024, 1024), (2048, 1024), (nil, 1024)])
        #expect(result.placements.allSatisfy { $0 == .init() })
        #expect(result.end == 4096)
    }

    @Test func theFirstFrameSetsTheOffsetExactly() {
        // Audio 100 samples after the first video frame: within the tolerance, still padded, to keep sync.
        #expect(Self.place([(100, 1024)]).placements == [.init(silence: 100)])
        #expect(Self.place([(100, 1024)]).end == 1124)
        // Audio from before the video: trimmed, across frames when it starts more than a frame early.
        let early = Self.place([(-1500, 1024), (-476, 1024), (548, 1024)])
        #expect(early.placements == [.init(skip: 1024), .init(skip: 476), .init()])
        #expect(early.end == 1572)
    }

    /// A seam of two clips joined by stream copy: the first clip's last packet squeezed to one tick, then the second
    /// clip's priming. Counted, the seam adds 1023 samples; placed, none.
    @Test func overlapAtASeamIsDropped() {
        let result = Self.place([(0, 1024), (1024, 1024), (2048, 1024), (2049, 1024), (3073, 1024)])
        #expect(result.placements[3] == .init(skip: 1023))
        #expect(result.placements[4] == .init())
        #expect(result.end == 4097)
    }

    @Test func gapIsFilledWithSilence() {
        let result = Self.place([(0, 1024), (48_000, 1024), (49_024, 1024)])
        #expect(result.placements == [.init(), .init(silence: 46_976), .init()])
        #expect(result.end == 50_048)
    }

    /// Timestamp jitter under the tolerance is not corrected, and never adds up: each frame is compared with the
    /// timeline's end, so once the drift passes the tolerance it is taken back whole.
    @Test func jitterIsLeftAloneButDriftNeverPassesTheTolerance() {
        var frames: [(start: Int64?, count: Int64)] = []
        // Each frame's timestamp says 1000 samples, each frame holds 1024: the audio runs 24 samples ahead per frame.
        for index in 0..<100 { frames.append((Int64(index) * 1000, 1024)) }
        var timeline = AudioTimeline(tolerance: 480)
        for (index, frame) in frames.enumerated() {
            let placement = timeline.place(start: frame.start, count: frame.count)
            let nextStart = Int64(index + 1) * 1000
            #expect(abs(timeline.end! - nextStart) <= 480 + 24, "frame \(index): \(placement)")
        }
        #expect(Self.place([(0, 1024), (1030, 1024), (2040, 1024)]).placements.allSatisfy { $0 == .init() })
    }
}
