import FarmFormats
import Testing

@Suite("Presentation delay of B-frame jobs")
struct PresentationDelayTests {
    @Test("no B-frames: no delay, so such jobs encode as they did")
    func noBFrames() {
        #expect(PresentationDelay.planned(presentationTimes: [0, 512, 1024, 1536], bFrames: 0) == 0)
    }

    @Test("constant frame rate: B-frames times the frame duration")
    func constantFrameRate() {
        let times = (0..<100).map { Int64($0) * 512 }
        #expect(PresentationDelay.planned(presentationTimes: times, bFrames: 3) == 3 * 512)
        #expect(PresentationDelay.planned(presentationTimes: times, bFrames: 1) == 512)
    }

    /// A variable frame rate source: the delay covers the slowest run of frames, wherever it is in the job, so a
    /// picture late by that many places is never shown before it decodes.
    @Test("variable frame rate: the longest run of B-frames frames, anywhere in the job")
    func variableFrameRate() {
        let times: [Int64] = [0, 100, 200, 300, 1300, 1400, 1500, 4500, 4600]
        #expect(PresentationDelay.planned(presentationTimes: times, bFrames: 2) == 3100)
        #expect(PresentationDelay.planned(presentationTimes: times, bFrames: 3) == 3200)
    }

    @Test("fewer frames than B-frames: the whole job's span")
    func shortJob() {
        #expect(PresentationDelay.planned(presentationTimes: [10, 30], bFrames: 3) == 20)
        #expect(PresentationDelay.planned(presentationTimes: [], bFrames: 3) == 0)
    }
}
