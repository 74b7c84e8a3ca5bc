import CFFmpeg
import FarmFormats

/// Finds the frame shown at a given time of a video stream: the last frame whose timestamp is at or before it.
///
/// Seeks to the keyframe before the time and decodes forward; asked for times in increasing order, it keeps decoding
/// instead of seeking when no keyframe lies between where it is and the time asked (a source with one keyframe is
/// then decoded once, not once per time). Demuxers seek by decode timestamps, some to any packet rather than a
/// keyframe (MPEG-TS): a seek after which no frame at or before the time comes out is retried further back, twice as
/// far each time, and once before the first frame, the file is decoded from its start.
final class FrameSeeker {
    private let path: String
    private var input: InputFile
    private let streamIndex: Int
    private var stream: MediaStream
    private let decoder: CodecDecoder
    private let originPTS: Int64
    private let oneSecond: Int64
    private let working = Frame()
    private let packet = Packet()
    /// The last decoded frame at or before the time last asked for, and the first one after it.
    private var shown: (frame: Frame, pts: Int64)?
    private var ahead: (frame: Frame, pts: Int64)?
    /// Whether the decoder follows on from the previous request (no seek or flush since), and has been drained.
    private var positioned = false
    private var drained = false
    private var lastReadDTS = Int64.min
    /// Since a seek: waiting for the first keyframe; then that keyframe's timestamp (its leading pictures are dropped).
    private var keyframePTS: Int64?
    /// Packets sent to the decoder so far: what the thumbnails cost.
    private(set) var packetsDecoded = 0

    init(path: String, originPTS: Int64) throws {
        self.path = path
        self.input = try InputFile(path: path)
        guard let index = self.input.bestStream(AVMEDIA_TYPE_VIDEO) else {
            throw MediaError(.unsupportedInput, "\(path): no video stream to take thumbnails from")
        }
        self.streamIndex = index
        self.stream = self.input.stream(index)
        self.decoder = try CodecDecoder(stream: self.stream, path: path, threads: 1)
        // Decoding starts at whichever keyframe the seek found: after an open-GOP one, the first pictures may name
        // references from before it (harmless for them). A damaged source fails its chunk's strict decode anyway.
        self.decoder.isStrict = false
        self.originPTS = originPTS
        self.oneSecond = max(1, av_rescale_q(1, AVRational(num: 1, den: 1), self.stream.timeBase))
    }

    var videoInfo: VideoStreamInfo { VideoStreamInfo(stream: self.stream) }

    /// The frame shown `milliseconds` after the video's first frame (the first frame if that is before it).
    func frame(atMilliseconds milliseconds: Int) throws -> Frame {
        let target =
            self.originPTS
            + av_rescale_q(Int64(milliseconds), AVRational(num: 1, den: 1000), self.stream.timeBase)
        if self.canContinue(to: target) {
            try self.decode(upTo: target)
            if let shown { return shown.frame }
        }
        var seekTarget = target
        var step = self.oneSecond
        // Stepping back ends a second before the first frame: past any decode-timestamp offset of B-frames.
        // A demuxer that cannot seek there (or at all) leaves the start of the file, which is always right.
        while seekTarget >= self.originPTS - self.oneSecond, self.seek(to: seekTarget) {
            try self.decode(upTo: target)
            if let shown { return shown.frame }
            seekTarget -= step
            step *= 2
        }
        try self.rewind()
        try self.decode(upTo: target)
        if let shown { return shown.frame }
        // The time is before the first frame: show the first.
        guard let ahead else {
            throw MediaError(.invalidInput, "\(self.path): no video frame could be decoded")
        }
        self.shown = ahead
        self.ahead = nil
        return ahead.frame
    }

    /// Whether decoding on from here reaches `target` at least as soon as a seek would.
    private func canContinue(to target: Int64) -> Bool {
        guard self.positioned, let shown, shown.pts <= target else { return false }
        if self.drained { return true }
        let entries = avformat_index_get_entries_count(self.stream.pointer)
        guard entries > 0 else {
            // No index to find keyframes in (MPEG-TS): a few seconds of decoding costs less than a blind seek.
            return target - shown.pts <= 5 * self.oneSecond
        }
        let keyframe = av_index_search_timestamp(self.stream.pointer, target, AVSEEK_FLAG_BACKWARD)
        guard keyframe >= 0, let entry = avformat_index_get_entry(self.stream.pointer, keyframe) else { return true }
        return entry.pointee.timestamp <= self.lastReadDTS
    }

    private func seek(to target: Int64) -> Bool {
        guard (try? self.input.seek(stream: self.streamIndex, toKeyframeAtOrBefore: target)) != nil else {
            return false
        }
        self.restartDecoding()
        return true
    }

    /// Back to the start of the file: opened again, which no demuxer can get wrong.
    private func rewind() throws {
        self.input = try InputFile(path: self.path)
        self.stream = self.input.stream(self.streamIndex)
        self.restartDecoding()
    }

    private func restartDecoding() {
        self.decoder.flush()
        self.shown = nil
        self.ahead = nil
        self.positioned = true
        self.drained = false
        self.lastReadDTS = Int64.min
        self.keyframePTS = nil
    }

    /// Decodes until a frame after `target` comes out (decoders emit frames in presentation order) or the stream
    /// ends; `shown` is then the frame at `target`.
    private func decode(upTo target: Int64) throws {
        if let ahead {
            guard ahead.pts <= target else { return }
            self.shown = ahead
            self.ahead = nil
        }
        while true {
            if try self.receiveFrames(upTo: target) || self.drained { return }
            guard try self.input.read(into: self.packet) else {
                try self.decoder.send(nil)
                self.drained = true
                continue
            }
            defer { self.packet.unref() }
            guard self.packet.streamIndex == self.streamIndex else { continue }
            let pts = self.packet.pts
            if self.packet.dts != farm_nopts_value() {
                self.lastReadDTS = self.packet.dts
            }
            if let keyframePTS {
                if pts != farm_nopts_value(), pts < keyframePTS { continue }
            } else {
                guard self.packet.isKeyframe else { continue }
                self.keyframePTS = pts == farm_nopts_value() ? Int64.min : pts
            }
            try self.decoder.send(self.packet)
            self.packetsDecoded += 1
        }
    }

    /// Takes the frames the decoder has ready; true once one after `target` came out.
    private func receiveFrames(upTo target: Int64) throws -> Bool {
        while try self.decoder.receive(into: self.working) {
            let pts = self.working.presentationTimestamp ?? ((self.shown?.pts ?? self.originPTS) + 1)
            let kept = Frame()
            av_frame_move_ref(kept.pointer, self.working.pointer)
            guard pts <= target else {
                self.ahead = (kept, pts)
                return true
            }
            self.shown = (kept, pts)
        }
        return false
    }
}
