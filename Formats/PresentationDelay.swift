import FarmProtocol

/// How much later than its source time every picture and sound of a B-frame job is shown, so that no picture is
/// shown before it decodes.
///
/// A segment's pictures decode at the frames' own times in order (the n-th packet out of the encoder at the n-th
/// presentation time), so its `tfdt` is its first frame's time and seams join as without B-frames. A B-frame then
/// decodes after it is shown. Written as it is, that is a negative composition offset (a version 1 `trun`), which
/// browsers follow but libavformat (ffmpeg, ffprobe, mpv, VLC) reads as every later picture shown as late as the
/// deepest offset it has met so far: the video lags the sound, by more from the first segment that reorders deeper.
/// Shown this much later instead, every composition offset is zero or more and every reader agrees; the audio is
/// moved by as much, so sync holds. No edit list is needed.
public enum PresentationDelay {
    /// The delay (the job's time base) for frames shown at `presentationTimes` (sorted) and encoded with up to
    /// `bFrames` B-frames in a row: the longest time `bFrames` frames in a row are shown for. A picture decodes at
    /// most as many places after it is shown as the encoder reorders, and the encoder reorders no more than it has
    /// B-frames in a row. 0 without B-frames, so such jobs encode as before the delay existed.
    ///
    /// Decided by the job alone, so every chunk and the audio are moved the same way.
    public static func planned(presentationTimes: [Int64], bFrames: Int) -> Int64 {
        guard bFrames > 0, let first = presentationTimes.first, let last = presentationTimes.last else { return 0 }
        guard presentationTimes.count > bFrames else { return max(last - first, 0) }
        var longest: Int64 = 0
        for index in bFrames..<presentationTimes.count {
            longest = max(longest, presentationTimes[index] - presentationTimes[index - bFrames])
        }
        return longest
    }

    /// The most a job's pictures are shown late, in seconds: B-frames are worth a little delay, not a late start.
    /// A variable frame rate source with a long still (a slide held for 20 s) would need the whole job moved by it;
    /// such a job is encoded with fewer B-frames, or none, instead.
    public static let longestSeconds = 0.5

    /// A job's delay, and the B-frames in a row it is encoded with so that the delay stays within `longestSeconds`.
    public struct Plan: Equatable, Sendable {
        public var delay: Int64
        public var bFrames: Int

        public init(delay: Int64, bFrames: Int) {
            self.delay = delay
            self.bFrames = bFrames
        }
    }

    /// The most B-frames in a row, up to `bFrames`, whose delay (`planned(presentationTimes:bFrames:)`) is at most
    /// `longestSeconds`, and that delay; none, and no delay, when even one B-frame would need more.
    public static func plan(presentationTimes: [Int64], bFrames: Int, timeBase: Rational) -> Plan {
        for candidate in stride(from: bFrames, to: 0, by: -1) {
            let delay = self.planned(presentationTimes: presentationTimes, bFrames: candidate)
            if timeBase.seconds(delay) <= self.longestSeconds { return Plan(delay: delay, bFrames: candidate) }
        }
        return Plan(delay: 0, bFrames: 0)
    }

    /// The plan for the frames of `packets` a job shows: those not discarded, from `originPTS` on.
    public static func plan(packets: [VideoPacket], originPTS: Int64, bFrames: Int, timeBase: Rational) -> Plan {
        self.plan(
            presentationTimes: packets.filter { !$0.isDiscarded && $0.pts >= originPTS }.map(\.pts).sorted(),
            bFrames: bFrames,
            timeBase: timeBase
        )
    }

    /// How many samples later than without a delay the sound is shown, given the encoder's `priming` (samples it
    /// starts with, shown before the first picture): the delay in samples, to the nearest, less the priming, so the
    /// first sound is shown with the first picture. None when the delay is shorter than the priming (no B-frames):
    /// the sound then starts the difference late.
    public static func audioShift(delay: Int64, timeBase: Rational, sampleRate: Int, priming: Int64) -> Int64 {
        let scaled = delay * Int64(timeBase.num) * Int64(sampleRate)
        let denominator = max(Int64(timeBase.den), 1)
        return max((scaled + denominator / 2) / denominator - priming, 0)
    }
}
