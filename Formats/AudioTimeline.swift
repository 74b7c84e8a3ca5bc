/// Places decoded audio on the output's timeline by the source's timestamps, not by counting samples, so audio stays
/// in step with the video however its samples and its timestamps disagree.
///
/// They disagree in real files: a source made by joining clips by stream copy (`ffmpeg -stream_loop -c copy`, or a
/// concatenation) keeps every clip's AAC priming and last padded frame, so each seam decodes up to ~2,000 samples
/// more than its timestamps say (the muxer squeezes the overlapping packet to one tick); a capture that lost packets
/// has a gap. Counted, those samples push the audio later at each seam (0.2 s after ten one-minute loops); placed,
/// the overlapping samples are dropped and a gap is filled with silence, as a player that follows timestamps would
/// play them.
///
/// All positions are in samples of the output rate, from the job's first video frame. Pure: the encoder
/// (`AudioTrackEncode` in FarmMedia) applies what `place` returns.
package struct AudioTimeline: Equatable {
    /// A frame that starts within this many samples of where the previous one ended is taken as contiguous: timestamp
    /// rounding (a 1 ms Matroska or FLV clock is 48 samples at 48 kHz) is not a gap, and a correction smaller than
    /// this would be a click for nothing. Deviations never add up past it: each frame is compared with the
    /// timeline's end, not with the frame before.
    package let tolerance: Int64
    /// Where the next sample goes: samples placed so far, silence included. Nil until a sample is placed.
    package private(set) var end: Int64?

    /// What to do with one decoded frame before its samples join the timeline.
    package struct Placement: Equatable {
        /// Silence to insert before the frame (a gap in the source's timestamps, or audio starting after the video).
        package var silence: Int64 = 0
        /// Samples to drop from the frame's start (they overlap audio already placed, or come before the video).
        package var skip: Int64 = 0

        package init(silence: Int64 = 0, skip: Int64 = 0) {
            self.silence = silence
            self.skip = skip
        }
    }

    /// `tolerance` in samples; the default is 10 ms at 48 kHz.
    package init(tolerance: Int64 = 480) {
        self.tolerance = tolerance
    }

    /// Places a frame of `count` samples whose timestamp puts its first sample at `start` (nil when the frame has
    /// none: it follows the one before). Until the first sample is placed, frames are placed exactly, whatever the
    /// tolerance: they set the audio's offset from the video.
    package mutating func place(start: Int64?, count: Int64) -> Placement {
        let end = self.end ?? 0
        let start = start ?? end
        let drift = start - end
        var placement = Placement()
        if self.end == nil || abs(drift) > self.tolerance {
            if drift > 0 { placement.silence = drift }
            if drift < 0 { placement.skip = min(-drift, count) }
        }
        let placed = placement.silence + count - placement.skip
        if self.end != nil || placed > 0 { self.end = end + placed }
        return placement
    }
}
