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
        let outputStream = try container.addStream(copying: stream)
        try container.writeHeader()
        let packet = Packet()
        let shift = shift.units(in: stream.timeBase)
        // NUT refuses a negative presentation time; what is still before zero after the shift shows before the
        // job's first frame, so no chunk needs it. Matroska (audio) takes negative times (AAC priming) as they are.
        let dropsNegative = format == "nut"
        var position = 0
        reading: while try input.read(into: packet) {
            defer { packet.unref() }
            guard packet.streamIndex == streamIndex else { continue }
            defer { position += 1 }
            switch decide(position) {
            case .skip: continue
            case .stop: break reading
            case .copy:
                // Matroska and WebM carry no decode timestamps. With reordered frames (B-frames) the muxer derives them
                // from the presentation timestamps and the stream's reorder delay; without, they are the same.
                if packet.dts == farm_nopts_value(), stream.parameters.video_delay == 0 {
                    packet.dts = packet.pts
                }
                if packet.pts == farm_nopts_value() {
                    packet.pts = packet.dts
                }
                if shift != 0 {
                    for field in [\Packet.pts, \Packet.dts] where packet[keyPath: field] != farm_nopts_value() {
                        packet[keyPath: field] += shift
                    }
                    if dropsNegative, packet.pts != farm_nopts_value(), packet.pts < 0 {
                        continue
                    }
                }
                try container.write(packet, stream: outputStream, from: stream.timeBase)
            }
        }
        try container.finish()
    }
}
