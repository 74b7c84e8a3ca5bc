import FarmFormats
import FarmProtocol
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

    /// A slide held for 20 s in a 25 fps source: 3 B-frames in a row would need the whole job shown 20 s late. The
    /// job is planned with as many B-frames as keep the delay within `longestSeconds`; here none.
    @Test("a long still: fewer B-frames, never a delay past the longest")
    func longStillLowersTheBFrames() {
        let timeBase = Rational(1, 1000)
        var times = (0..<50).map { Int64($0) * 40 }
        times += (0..<50).map { 22_000 + Int64($0) * 40 }
        #expect(
            PresentationDelay.plan(presentationTimes: times, bFrames: 3, timeBase: timeBase)
                == .init(delay: 0, bFrames: 0)
        )
        // A frame shown 0.47 s allows one B-frame (0.47 s of delay), not two (0.51 s).
        var hole = (0..<50).map { Int64($0) * 40 }
        hole += (0..<50).map { 2_430 + Int64($0) * 40 }
        #expect(
            PresentationDelay.plan(presentationTimes: hole, bFrames: 3, timeBase: timeBase)
                == .init(delay: 470, bFrames: 1)
        )
        let steady = (0..<100).map { Int64($0) * 40 }
        #expect(
            PresentationDelay.plan(presentationTimes: steady, bFrames: 3, timeBase: timeBase)
                == .init(delay: 120, bFrames: 3)
        )
    }

    /// The sound moves by the delay less the AAC priming, to the nearest sample; never earlier than unmoved.
    @Test("the sound's shift: the delay in samples less the priming")
    func audioShift() {
        let timeBase = Rational(1, 12_800)
        // 3 frames at 25 fps: 0.12 s, 5760 samples at 48 kHz.
        #expect(
            PresentationDelay.audioShift(delay: 1536, timeBase: timeBase, sampleRate: 48_000, priming: 1024) == 4736
        )
        // One frame at 50 fps: 0.02 s, 960 samples, less than the priming.
        #expect(PresentationDelay.audioShift(delay: 256, timeBase: timeBase, sampleRate: 48_000, priming: 1024) == 0)
        #expect(PresentationDelay.audioShift(delay: 0, timeBase: timeBase, sampleRate: 48_000, priming: 1024) == 0)
        // 1/3 of a 30000/1001 frame in a 1/30000 time base rounds to the nearest sample.
        #expect(PresentationDelay.audioShift(delay: 1, timeBase: Rational(1, 3), sampleRate: 2, priming: 0) == 1)
    }
}
