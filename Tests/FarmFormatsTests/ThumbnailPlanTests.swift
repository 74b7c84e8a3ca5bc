import FarmFormats
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
}
