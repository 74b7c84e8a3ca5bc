import CFFmpeg
import FarmFormats
import FarmProtocol
import Foundation

/// An output file being muxed by libavformat.
final class OutputContainer {
    let pointer: UnsafeMutablePointer<AVFormatContext>
    let path: String
    private var headerWritten = false

    init(path: String, format: String) throws {
        self.path = path
        var context: UnsafeMutablePointer<AVFormatContext>?
        try check(
            avformat_alloc_output_context2(&context, nil, format, path),
            "avformat_alloc_output_context2",
            file: path
        )
        self.pointer = context!
        // No encoder version strings or creation times: outputs must be identical on every agent.
        self.pointer.pointee.flags |= AVFMT_FLAG_BITEXACT
        // Keep the timestamps we give: the muxer must not shift a chunk's segments back to zero.
        self.pointer.pointee.avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED
    }

    deinit {
        if self.pointer.pointee.pb != nil {
            avio_closep(&self.pointer.pointee.pb)
        }
        avformat_free_context(self.pointer)
    }

    func addStream(copying parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational) throws -> Int {
        guard let stream = avformat_new_stream(self.pointer, nil) else {
            fatalError("avformat_new_stream: out of memory")
        }
        try check(
            avcodec_parameters_copy(stream.pointee.codecpar, parameters),
            "avcodec_parameters_copy",
            file: self.path
        )
        stream.pointee.codecpar.pointee.codec_tag = try self.codecTag(for: parameters)
        stream.pointee.time_base = timeBase
        return Int(stream.pointee.index)
    }

    /// The tag a copied stream is written with. 0 lets the muxer pick its own; a muxer whose table lacks the codec
    /// (NUT has no tag for ProRes) gets the source's tag, else the QuickTime or AVI one, which NUT's demuxer also
    /// reads back. A codec no table names cannot be carried: the error says which codec and what to do.
    private func codecTag(for parameters: UnsafePointer<AVCodecParameters>) throws -> UInt32 {
        let codec = parameters.pointee.codec_id
        guard let muxerTags = self.pointer.pointee.oformat.pointee.codec_tag else { return 0 }
        var tag: UInt32 = 0
        if av_codec_get_tag2(muxerTags, codec, &tag) != 0 { return 0 }
        if parameters.pointee.codec_tag != 0 { return parameters.pointee.codec_tag }
        let tables: [OpaquePointer?] =
            parameters.pointee.codec_type == AVMEDIA_TYPE_AUDIO
            ? [avformat_get_riff_audio_tags(), avformat_get_mov_audio_tags(), nil]
            : [avformat_get_riff_video_tags(), avformat_get_mov_video_tags(), nil]
        let found = tables.withUnsafeBufferPointer { av_codec_get_tag2($0.baseAddress, codec, &tag) }
        guard found != 0 else {
            let format = String(cString: self.pointer.pointee.oformat.pointee.name)
            throw MediaError(
                .unsupportedInput,
                "\(self.path): the \(format) container farm sends chunks in cannot carry the codec "
                    + "\(String(cString: avcodec_get_name(codec))); transcode the source to a common codec "
                    + "(H.264, HEVC or ProRes in MOV) and submit it again"
            )
        }
        return tag
    }

    func addStream(encoder: CodecEncoder) throws -> Int {
        guard let stream = avformat_new_stream(self.pointer, nil) else {
            fatalError("avformat_new_stream: out of memory")
        }
        try check(
            avcodec_parameters_from_context(stream.pointee.codecpar, encoder.pointer),
            "avcodec_parameters_from_context",
            file: self.path
        )
        stream.pointee.time_base = encoder.pointer.pointee.time_base
        return Int(stream.pointee.index)
    }

    func timeBase(ofStream index: Int) -> AVRational { self.pointer.pointee.streams[index]!.pointee.time_base }

    func writeHeader(options: [String: String] = [:]) throws {
        try check(
            avio_open(&self.pointer.pointee.pb, self.path, AVIO_FLAG_WRITE),
            "avio_open",
            file: self.path,
            code: .io
        )
        var dictionary: OpaquePointer?
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        defer { av_dict_free(&dictionary) }
        try check(avformat_write_header(self.pointer, &dictionary), "avformat_write_header", file: self.path)
        self.headerWritten = true
    }

    /// Writes a packet whose timestamps are in `timeBase`, rescaled to the stream's own.
    func write(_ packet: Packet, stream: Int, from timeBase: AVRational) throws {
        packet.pointer.pointee.stream_index = Int32(stream)
        av_packet_rescale_ts(packet.pointer, timeBase, self.timeBase(ofStream: stream))
        try check(av_write_frame(self.pointer, packet.pointer), "av_write_frame", file: self.path)
    }

    /// With `movflags=frag_custom`, ends the current fragment: the next packet starts a new segment.
    func flushFragment() throws {
        try check(av_write_frame(self.pointer, nil), "av_write_frame (flush fragment)", file: self.path)
    }

    func finish() throws {
        try check(av_write_trailer(self.pointer), "av_write_trailer", file: self.path)
        try check(avio_closep(&self.pointer.pointee.pb), "avio_closep", file: self.path, code: .io)
    }

    /// Options for fragmented MP4 (CMAF-style): an empty moov in the init segment, one moof+mdat per segment
    /// flushed by us, timestamps kept as given so a chunk's segments continue the previous chunk's timeline.
    static func fragmentedMP4Options(firstFragmentNumber: Int) -> [String: String] {
        [
            "movflags": "frag_custom+empty_moov+default_base_moof+frag_discont+skip_trailer",
            "use_editlist": "0",
            "fragment_index": String(firstFragmentNumber),
        ]
    }
}

/// Moves every timestamp of a copied stream by `units` of `timeBase` (converted to the stream's own time base).
public struct TimestampShift: Sendable, Equatable {
    public var units: Int64
    public var timeBase: Rational

    public init(units: Int64, timeBase: Rational) {
        self.units = units
        self.timeBase = timeBase
    }

    public static let none = TimestampShift(units: 0, timeBase: Rational(1, 1))

    func units(in streamTimeBase: AVRational) -> Int64 { av_rescale_q(self.units, self.timeBase.av, streamTimeBase) }
}

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

/// Rewrites the farm's fMP4 segments as MPEG-TS (`--container ts`): packets and timestamps unchanged, so the TS
/// output has exactly the frames, keyframes and timeline of the fMP4 one, and the same input gives the same bytes.
package enum TransportStreamRemux {
    /// Writes the segment `segment` (decodable after `initSegment`) to `output` as MPEG-TS. The muxer turns H.264
    /// into Annex B with SPS/PPS before each IDR and AAC into ADTS, so every `.ts` file starts independently.
    package static func remux(initSegment: String, segment: String, output: String) throws {
        // libavformat reads a fragment only after its moov: join the two in a scratch file beside the output.
        let joined = output + ".joined.mp4"
        do {
            let data =
                try Data(contentsOf: URL(fileURLWithPath: initSegment))
                + Data(contentsOf: URL(fileURLWithPath: segment))
            try data.write(to: URL(fileURLWithPath: joined))
        } catch {
            throw MediaError(
                .io,
                "cannot join \(initSegment) and \(segment) for MPEG-TS: \(error); check the output folder"
            )
        }
        defer { try? FileManager.default.removeItem(atPath: joined) }
        try ChunkExtractor.extract(source: joined, streamIndex: 0, output: output, format: "mpegts") { _ in .copy }
    }
}
