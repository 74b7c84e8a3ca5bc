import CFFmpeg
import FarmFormats

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

    /// Adds a stream with the codec parameters and time base of `source`, for its packets as they are.
    func addStream(copying source: MediaStream) throws -> Int {
        let parameters = UnsafePointer(source.pointer.pointee.codecpar!)
        guard let stream = avformat_new_stream(self.pointer, nil) else {
            fatalError("avformat_new_stream: out of memory")
        }
        try check(
            avcodec_parameters_copy(stream.pointee.codecpar, parameters),
            "avcodec_parameters_copy",
            file: self.path
        )
        stream.pointee.codecpar.pointee.codec_tag = try self.codecTag(for: parameters)
        stream.pointee.time_base = source.timeBase
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
        stream.pointee.time_base = encoder.timeBase
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

    /// Writes a packet whose timestamps are in `timeBase`, rescaled to the stream's own; its presentation time
    /// then `presentationDelay` of the stream's units later (see `MP4Boxes.shiftCompositionOffsets`; only tasks
    /// planned before `TaskSpec.presentationDelay` pass one).
    func write(_ packet: Packet, stream: Int, from timeBase: AVRational, presentationDelay: Int64 = 0) throws {
        packet.streamIndex = stream
        av_packet_rescale_ts(packet.pointer, timeBase, self.timeBase(ofStream: stream))
        packet.pts += presentationDelay
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
