import FarmFormats
import FarmProtocol
import Testing

@Suite("Thumbnail plan")
struct ThumbnailPlanTests {
    @Test func planCoversAnyDurationWithAtMostAHundredTiles() {
        for seconds in [0.4, 1.0, 9.96, 10.0, 59.0, 200.0, 201.5, 7200.04] {
            let plan = ThumbnailPlan(durationSeconds: seconds, displayWidth: 1920, displayHeight: 1080)
            #expect(plan.tiles.count <= 100)
            #expect(plan.tiles.first?.startMS == 0)
            #expect(plan.tiles.last?.endMS == Int((seconds * 1000).rounded()))
            #expect(zip(plan.tiles, plan.tiles.dropFirst()).allSatisfy { $0.endMS == $1.startMS })
            #expect(plan.tiles.allSatisfy { $0.endMS > $0.startMS })
            #expect(plan.tileWidth == 160 && plan.tileHeight == 90)
            #expect(plan.posterWidth == 1280 && plan.posterHeight == 720)
        }
        #expect(ThumbnailPlan(durationSeconds: 59, displayWidth: 16, displayHeight: 9).intervalMS == 2000)
        #expect(ThumbnailPlan(durationSeconds: 7200, displayWidth: 16, displayHeight: 9).intervalMS == 72000)
        #expect(ThumbnailPlan(durationSeconds: 0.4, displayWidth: 16, displayHeight: 9).posterMS == 0)
        #expect(ThumbnailPlan.timestamp(3_723_004) == "01:02:03.004")
    }

    /// A tile shows the first keyframe inside its cue, or the frame at its start when its cue has none; keyframe times
    /// are rounded up to whole milliseconds from the first frame, discarded packets and all but the first of each
    /// second left out.
    @Test func tilesShowTheFirstKeyframeInsideTheirCue() {
        let plan = ThumbnailPlan(
            durationSeconds: 10,
            displayWidth: 1920,
            displayHeight: 1080,
            keyframesMS: [0, 1500, 2300, 4100, 7999]
        )
        #expect(plan.tiles.map(\.startMS) == [0, 2000, 4000, 6000, 8000])
        #expect(plan.tiles.map(\.pictureMS) == [0, 2300, 4100, 7999, 8000])

        func packet(_ pts: Int64, keyframe: Bool = true, discarded: Bool = false) -> VideoPacket {
            VideoPacket(pts: pts, dts: pts, isKeyframe: keyframe, duration: 3000, isDiscarded: discarded)
        }
        let packets = [
            packet(6000), packet(9000, keyframe: false), packet(3000, discarded: true),
            packet(6000 + 90_001), packet(6000 + 135_000), packet(6000 + 270_000), packet(6000 + 180_000),
        ]
        #expect(
            ThumbnailPlan.keyframeTimes(of: packets, originPTS: 6000, timeBase: Rational(1, 90000))
                == [0, 1001, 2000, 3000]
        )
    }
}
