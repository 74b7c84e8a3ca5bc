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

    /// The delay for the frames of `packets` a job shows: those not discarded, from `originPTS` on.
    public static func planned(packets: [VideoPacket], originPTS: Int64, bFrames: Int) -> Int64 {
        self.planned(
            presentationTimes: packets.filter { !$0.isDiscarded && $0.pts >= originPTS }.map(\.pts).sorted(),
            bFrames: bFrames
        )
    }
}
