import CFFmpeg
import FarmFormats

/// Copies a packet range of one source stream into a small self-contained container for an agent (no decoding).
public enum ChunkExtractor {
    /// How `extractVideo` came to the chunk's first packet.
    public enum Start: Sendable, Equatable {
        /// Read from the file's first byte: the chunk starts there, or nothing identifies its first packet (tasks
        /// planned before the identity was recorded).
        case fromStart
        /// Sought to just before the first packet and met it: the file's earlier bytes were never read.
        case sought
        /// The seek failed, landed after the first packet or never met it; read from the start instead.
        case fellBack(reason: String)
    }

    /// Writes the video packets `firstPacket...lastPacket` (decode order, as the planner numbered them) to `output`
    /// as NUT, which keeps the source time base exactly (Matroska would round timestamps to milliseconds).
    ///
    /// With `firstPacketIdentity` (the first packet's timestamps and byte position from the probe) it seeks there
    /// instead of counting packets from the start of the file, so the last chunk of a long source costs what the
    /// first does; the packets written are the same either way. Without it, it reads from the start.
    ///
    /// NUT refuses negative presentation timestamps, so every timestamp is moved by `shift` (see
    /// `TaskSpec.nonNegativeShift(prerollPTS:)`); a packet still before zero is a leading picture of the pre-roll
    /// keyframe, which the agent never decodes, and is left out.
    @discardableResult
    public static func extractVideo(
        source: String,
        streamIndex: Int,
        firstPacket: Int,
        lastPacket: Int,
        firstPacketIdentity: PacketIdentity? = nil,
        shift: TimestampShift = .none,
        output: String
    ) throws -> Start {
        try self.extract(
            source: source,
            streamIndex: streamIndex,
            output: output,
            format: "nut",
            shift: shift,
            startingAt: firstPacketIdentity.map { (firstPacket, $0) }
        ) { position in
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
        try self.extract(
            source: source,
            streamIndex: streamIndex,
            output: output,
            format: "matroska",
            shift: shift
        ) { _ in .copy }
    }

    enum Decision { case skip, copy, stop }

    /// Copies the packets of one stream that `decide` picks by their decode-order position in the stream. With
    /// `start`, the packet at that position (named by its identity) is found by a seek, and positions count on
    /// from it.
    @discardableResult
    static func extract(
        source: String,
        streamIndex: Int,
        output: String,
        format: String,
        shift: TimestampShift = .none,
        startingAt start: (position: Int, identity: PacketIdentity)? = nil,
        decide: (Int) -> Decision
    ) throws -> Start {
        MediaLogging.quiet()
        var input = try Self.open(source, streamIndex: streamIndex)
        let packet = Packet()
        var position = 0
        // The seek leaves the chunk's first packet read but not yet copied.
        var pending = false
        var outcome = Start.fromStart
        if let start, start.position > 0 {
            if let miss = Self.seek(input, stream: streamIndex, to: start.identity, packet: packet) {
                // Opened again rather than sought to zero: the start of the file is what no demuxer gets wrong.
                outcome = .fellBack(reason: miss)
                input = try Self.open(source, streamIndex: streamIndex)
            } else {
                outcome = .sought
                position = start.position
                pending = true
            }
        }
        let stream = input.stream(streamIndex)
        let container = try OutputContainer(path: output, format: format)
        let outputStream = try container.addStream(copying: stream)
        try container.writeHeader()
        let shift = shift.units(in: stream.timeBase)
        // NUT refuses a negative presentation time; what is still before zero after the shift shows before the
        // job's first frame, so no chunk needs it. Matroska (audio) takes negative times (AAC priming) as they are.
        let dropsNegative = format == "nut"
        reading: while try pending || input.read(into: packet) {
            pending = false
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
        return outcome
    }

    private static func open(_ source: String, streamIndex: Int) throws -> InputFile {
        let input = try InputFile(path: source)
        guard streamIndex < input.streamCount else {
            throw MediaError(
                .invalidInput,
                "\(source): stream \(streamIndex) does not exist; the file changed since it was planned"
            )
        }
        return input
    }

    /// Seeks to a keyframe at or before the packet `identity` names and reads on until `packet` holds that packet;
    /// returns nil then, or why it could not (the caller reads from the start instead).
    ///
    /// The seek goes by time, to the smaller of the packet's timestamps (a demuxer compares decode or presentation
    /// time, its choice). It has overshot when the first packet it gives is later than that, and it has missed when
    /// a later keyframe comes first (keyframes keep presentation order in decode order) or the stream ends.
    private static func seek(
        _ input: InputFile,
        stream index: Int,
        to identity: PacketIdentity,
        packet: Packet
    ) -> String? {
        let target = min(identity.pts, identity.dts)
        do {
            try input.seek(stream: index, toKeyframeAtOrBefore: target)
            var first = true
            while try input.read(into: packet) {
                guard packet.streamIndex == index else {
                    packet.unref()
                    continue
                }
                let read = Self.identity(of: packet)
                if read.pts == identity.pts, read.dts == identity.dts,
                    identity.position == nil || read.position == identity.position
                {
                    return nil
                }
                defer { packet.unref() }
                if first, min(read.pts, read.dts) > target {
                    return "the seek to \(target) landed after the chunk's first packet, at pts \(read.pts)"
                }
                if !first, packet.isKeyframe, read.pts > identity.pts {
                    return "the seek to \(target) passed the chunk's first packet without meeting it"
                }
                first = false
            }
            return "the seek to \(target) reached the end of the stream without meeting the chunk's first packet"
        } catch {
            return "\(error)"
        }
    }

    /// A packet's identity as `SourceProbe` records it: a missing timestamp takes the other's value.
    private static func identity(of packet: Packet) -> PacketIdentity {
        let noTimestamp = farm_nopts_value()
        return PacketIdentity(
            pts: packet.pts != noTimestamp ? packet.pts : packet.dts,
            dts: packet.dts != noTimestamp ? packet.dts : packet.pts,
            position: packet.position >= 0 ? packet.position : nil
        )
    }
}
