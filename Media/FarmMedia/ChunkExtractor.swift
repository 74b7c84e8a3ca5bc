import CFFmpeg
import FarmFormats

/// Copies a packet range of one source stream into a small self-contained container for an agent (no decoding).
public enum ChunkExtractor {
    /// Writes the video packets `firstPacket...lastPacket` (decode order, as the planner numbered them) to `output`
    /// as NUT, which keeps the source time base exactly (Matroska would round timestamps to milliseconds).
    ///
    /// NUT refuses negative presentation timestamps, so every timestamp is moved by `shift` (see
    /// `TaskSpec.nonNegativeShift(prerollPTS:)`); a packet still before zero is a leading picture of the pre-roll
    /// keyframe, which the agent never decodes, and is left out.
    public static func extractVideo(
        source: String,
        streamIndex: Int,
        firstPacket: Int,
        lastPacket: Int,
        shift: TimestampShift = .none,
        output: String
    ) throws {
        try self.extract(source: source, streamIndex: streamIndex, output: output, format: "nut", shift: shift) {
            position in
            position > lastPacket ? .stop : (position >= firstPacket ? .copy : .skip)
        }
    }

    /// Writes every packet of an audio stream to `output` as Matroska: NUT refuses the negative timestamps of
    /// AAC priming, and millisecond timestamps are exact enough for audio. Timestamps move by `shift`, the
    /// video's (see `TaskSpec.nonNegativeShift(prerollPTS:)`), to keep sync.
    public static func extractStream(
        source: String,
        streamIndex: Int,
        shift: TimestampShift = .none,
        output: String
    ) throws {
        try self.extract(source: source, streamIndex: streamIndex, output: output, format: "matroska", shift: shift) {
            _ in .copy
        }
    }

    enum Decision { case skip, copy, stop }

    static func extract(
        source: String,
        streamIndex: Int,
        output: String,
        format: String,
        shift: TimestampShift = .none,
        decide: (Int) -> Decision
    ) throws {
        MediaLogging.quiet()
        let input = try InputFile(path: source)
        guard streamIndex < input.streamCount else {
            throw MediaError(
                .invalidInput,
                "\(source): stream \(streamIndex) does not exist; the file changed since it was planned"
            )
        }
        let stream = input.stream(streamIndex)
        let container = try OutputContainer(path: output, format: format)
        let outputStream = try container.addStream(copying: stream.pointee.codecpar, timeBase: stream.pointee.time_base)
        try container.writeHeader()
        let packet = Packet()
        let shift = shift.units(in: stream.pointee.time_base)
        // NUT refuses a negative presentation time; what is still before zero after the shift shows before the
        // job's first frame, so no chunk needs it. Matroska (audio) takes negative times (AAC priming) as they are.
        let dropsNegative = format == "nut"
        var position = 0
        reading: while try input.read(into: packet) {
            defer { packet.unref() }
            guard Int(packet.pointer.pointee.stream_index) == streamIndex else { continue }
            defer { position += 1 }
            switch decide(position) {
            case .skip: continue
            case .stop: break reading
            case .copy:
                // Matroska and WebM carry no decode timestamps. With reordered frames (B-frames) the muxer derives them
                // from the presentation timestamps and the stream's reorder delay; without, they are the same.
                if packet.pointer.pointee.dts == farm_nopts_value(), stream.pointee.codecpar.pointee.video_delay == 0 {
                    packet.pointer.pointee.dts = packet.pointer.pointee.pts
                }
                if packet.pointer.pointee.pts == farm_nopts_value() {
                    packet.pointer.pointee.pts = packet.pointer.pointee.dts
                }
                if shift != 0 {
                    for field in [\AVPacket.pts, \AVPacket.dts]
                    where packet.pointer.pointee[keyPath: field] != farm_nopts_value() {
                        packet.pointer.pointee[keyPath: field] += shift
                    }
                    if dropsNegative, packet.pointer.pointee.pts != farm_nopts_value(), packet.pointer.pointee.pts < 0 {
                        continue
                    }
                }
                try container.write(packet, stream: outputStream, from: stream.pointee.time_base)
            }
        }
        try container.finish()
    }
}
