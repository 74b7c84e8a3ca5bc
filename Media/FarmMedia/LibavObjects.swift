import CFFmpeg
import FarmFormats
import Foundation

// Small owners of libav pointers. Each frees its pointer in deinit; the pointers are `internal` and never leave
// this module (STYLE.md: C interop confined to Media/).

package final class Packet {
    package let pointer: UnsafeMutablePointer<AVPacket>

    package init() {
        guard let pointer = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        self.pointer = pointer
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVPacket>? = self.pointer
        av_packet_free(&pointer)
    }

    package func unref() { av_packet_unref(self.pointer) }

    /// The index, in its file, of the stream the packet belongs to.
    package var streamIndex: Int {
        get { Int(self.pointer.pointee.stream_index) }
        set { self.pointer.pointee.stream_index = Int32(newValue) }
    }

    /// Presentation timestamp in its stream's time base; `farm_nopts_value()` when unknown.
    package var pts: Int64 {
        get { self.pointer.pointee.pts }
        set { self.pointer.pointee.pts = newValue }
    }

    /// Decode timestamp in its stream's time base; `farm_nopts_value()` when unknown.
    package var dts: Int64 {
        get { self.pointer.pointee.dts }
        set { self.pointer.pointee.dts = newValue }
    }

    /// Duration in its stream's time base; 0 when unknown.
    package var duration: Int64 {
        get { self.pointer.pointee.duration }
        set { self.pointer.pointee.duration = newValue }
    }

    /// Byte offset of the packet's data in its file; -1 when the demuxer does not say.
    package var position: Int64 { self.pointer.pointee.pos }

    /// The `AV_PKT_FLAG_*` bits (keyframe, corrupt, discard, ...).
    package var flags: Int32 { self.pointer.pointee.flags }

    package var isKeyframe: Bool { self.flags & AV_PKT_FLAG_KEY != 0 }

    /// Whether the demuxer marks the packet as one to decode but not to show.
    package var isDiscarded: Bool { self.flags & AV_PKT_FLAG_DISCARD != 0 }

    /// The packet's bytes; nil when it has none. Valid until the packet is unreferenced.
    package var payload: UnsafeBufferPointer<UInt8>? {
        guard let data = self.pointer.pointee.data, self.pointer.pointee.size > 0 else { return nil }
        return UnsafeBufferPointer(start: data, count: Int(self.pointer.pointee.size))
    }
}

package final class Frame {
    package let pointer: UnsafeMutablePointer<AVFrame>

    package init() {
        guard let pointer = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        self.pointer = pointer
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVFrame>? = self.pointer
        av_frame_free(&pointer)
    }

    /// An audio frame of `samples` samples in the sample format, rate and channel layout `encoder` takes; its
    /// buffers are not allocated yet.
    package convenience init(audioFor encoder: CodecEncoder, samples: Int32) {
        self.init()
        self.pointer.pointee.format = encoder.pointer.pointee.sample_fmt.rawValue
        self.pointer.pointee.sample_rate = encoder.pointer.pointee.sample_rate
        av_channel_layout_copy(&self.pointer.pointee.ch_layout, &encoder.pointer.pointee.ch_layout)
        self.pointer.pointee.nb_samples = samples
    }

    package func unref() { av_frame_unref(self.pointer) }

    /// Presentation timestamp as the frame carries it; `farm_nopts_value()` when unknown. Decoded frames are timed
    /// by `presentationTimestamp`; this is the field that encoders and filters read.
    package var pts: Int64 {
        get { self.pointer.pointee.pts }
        set { self.pointer.pointee.pts = newValue }
    }

    /// libav's guess of the presentation timestamp from the packets' pts and dts; nil when it has none.
    package var bestEffortTimestamp: Int64? {
        let timestamp = self.pointer.pointee.best_effort_timestamp
        return timestamp == farm_nopts_value() ? nil : timestamp
    }

    /// When a decoded frame is shown, in its stream's time base: the best-effort timestamp, else `pts`; nil when
    /// neither is known. The one rule decoded pictures are timed by (chunks, thumbnails, `farm verify`).
    package var presentationTimestamp: Int64? {
        if let best = self.bestEffortTimestamp { return best }
        let pts = self.pts
        return pts == farm_nopts_value() ? nil : pts
    }

    /// The duration of the packet the frame was decoded from, in its stream's time base; 0 when unknown.
    package var packetDuration: Int64 { self.pointer.pointee.pkt_duration }

    package var width: Int {
        get { Int(self.pointer.pointee.width) }
        set { self.pointer.pointee.width = Int32(newValue) }
    }

    package var height: Int {
        get { Int(self.pointer.pointee.height) }
        set { self.pointer.pointee.height = Int32(newValue) }
    }

    /// The format of a video frame.
    package var pixelFormat: AVPixelFormat {
        get { AVPixelFormat(rawValue: self.pointer.pointee.format) }
        set { self.pointer.pointee.format = newValue.rawValue }
    }

    /// The bytes of one row of a video frame's plane, its padding included (the whole `linesize`).
    package func rowBytes(plane: Int, row: Int) -> [UInt8] {
        guard let data = farm_frame_data(self.pointer, Int32(plane)) else { return [] }
        let stride = Int(farm_frame_linesize(self.pointer, Int32(plane)))
        return Array(UnsafeBufferPointer(start: data + row * stride, count: stride))
    }

    /// Repeats each row's last byte up to the row's end (its `linesize`), in every plane. `av_frame_get_buffer`
    /// aligns rows, and the bytes past the picture's width are whatever the allocator's memory held; libx264 reads
    /// some of them (a 426-pixel-wide 240p rung, 213-pixel chroma rows, came out differently from the same pictures
    /// now and then, depending on what the agent process had done before). Filled, the pictures an encoder is given
    /// are the same bytes wherever they were allocated, which same task, same bytes depends on.
    package func fillRowPadding() {
        guard let descriptor = av_pix_fmt_desc_get(self.pixelFormat) else { return }
        let chromaShift = Int(descriptor.pointee.log2_chroma_h)
        for plane in 0..<4 {
            guard let data = farm_frame_data(self.pointer, Int32(plane)) else { continue }
            let stride = Int(farm_frame_linesize(self.pointer, Int32(plane)))
            let used = Int(av_image_get_linesize(self.pixelFormat, Int32(self.width), Int32(plane)))
            guard used > 0, stride > used else { continue }
            let rows = plane == 1 || plane == 2 ? (self.height + (1 << chromaShift) - 1) >> chromaShift : self.height
            for row in 0..<rows {
                let line = data + row * stride
                memset(line + used, Int32(line[used - 1]), stride - used)
            }
        }
    }

    /// The format of an audio frame.
    package var sampleFormat: AVSampleFormat { AVSampleFormat(rawValue: self.pointer.pointee.format) }

    /// The picture type an encoder is asked for (`AV_PICTURE_TYPE_I` forces a keyframe) or a decoder saw.
    package var pictureType: AVPictureType {
        get { self.pointer.pointee.pict_type }
        set { self.pointer.pointee.pict_type = newValue }
    }

    package var sampleAspectRatio: AVRational { self.pointer.pointee.sample_aspect_ratio }

    package var colorspace: AVColorSpace { self.pointer.pointee.colorspace }

    package var colorRange: AVColorRange {
        get { self.pointer.pointee.color_range }
        set { self.pointer.pointee.color_range = newValue }
    }

    /// The quantiser an encoder with a fixed one (`AV_CODEC_FLAG_QSCALE`) uses for this picture, in lambda units.
    package var quality: Int32 {
        get { self.pointer.pointee.quality }
        set { self.pointer.pointee.quality = newValue }
    }

    /// Samples per channel of an audio frame.
    package var sampleCount: Int32 {
        get { self.pointer.pointee.nb_samples }
        set { self.pointer.pointee.nb_samples = newValue }
    }

    package var sampleRate: Int32 { self.pointer.pointee.sample_rate }

    package var channelCount: Int32 { self.pointer.pointee.ch_layout.nb_channels }

    /// The planes of an audio frame (one per channel for planar formats).
    package var extendedData: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>! {
        self.pointer.pointee.extended_data
    }

    /// Whether the decoder met errors in this frame (concealed macroblocks, missing references) or marks it as not
    /// fully recovered: such a frame is never encoded.
    package var hasDecodeErrors: Bool {
        self.pointer.pointee.decode_error_flags != 0 || self.pointer.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0
    }
}

/// An opened input file (demuxer).
package final class InputFile {
    package let pointer: UnsafeMutablePointer<AVFormatContext>
    package let path: String

    /// Why libav could not open `path`, in the words an uploader can act on: an empty file and a text file (an
    /// error page saved in place of the video, a wrong file picked) are named as such.
    private static func unreadableReason(path: String, error: Int32) -> String {
        let file = FileHandle(forReadingAtPath: path)
        defer { try? file?.close() }
        let head = (try? file?.read(upToCount: 4096)) ?? Data()
        if head.isEmpty {
            return "\(path): the file is empty (0 bytes); the upload did not arrive, send the file again"
        }
        let isText = head.allSatisfy { $0 == 9 || $0 == 10 || $0 == 13 || (32..<127).contains($0) || $0 >= 128 }
        if isText, String(data: head, encoding: .utf8) != nil {
            let firstLine = String(decoding: head.prefix(60), as: UTF8.self).split(separator: "\n").first ?? ""
            return "\(path): this is a text file, not a video (it starts \"\(firstLine)\"); submit the video file"
        }
        return "\(path): not a readable video file (avformat_open_input: \(avErrorString(error))); "
            + "check that the upload is complete and is a video"
    }

    package init(path: String) throws {
        self.path = path
        var context: UnsafeMutablePointer<AVFormatContext>?
        let opened = avformat_open_input(&context, path, nil, nil)
        guard opened >= 0, let context else {
            if opened == farm_averror(ENOENT) {
                throw MediaError(.io, "\(path): no such file; check the path")
            }
            if opened == farm_averror(EACCES) {
                throw MediaError(.io, "\(path): permission denied; make the file readable by farm")
            }
            throw MediaError(.invalidInput, Self.unreadableReason(path: path, error: opened))
        }
        self.pointer = context
        let found = avformat_find_stream_info(context, nil)
        if found < 0 {
            var owned: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&owned)
            throw MediaError(
                .invalidInput,
                "\(path): cannot read stream information (avformat_find_stream_info: \(avErrorString(found))); "
                    + "the file is damaged or truncated"
            )
        }
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVFormatContext>? = self.pointer
        avformat_close_input(&pointer)
    }

    package var streamCount: Int { Int(self.pointer.pointee.nb_streams) }

    package func stream(_ index: Int) -> MediaStream {
        MediaStream(file: self, index: index, pointer: self.pointer.pointee.streams[index]!)
    }

    /// The demuxer's short name (for MP4 and MOV: "mov,mp4,m4a,3gp,3g2,mj2").
    package var formatName: String { String(cString: self.pointer.pointee.iformat.pointee.name) }

    /// The default stream of a type, as libav would pick it, or nil.
    package func bestStream(_ type: AVMediaType) -> Int? {
        let index = av_find_best_stream(self.pointer, type, -1, -1, nil, 0)
        return index >= 0 ? Int(index) : nil
    }

    /// Moves reading to a keyframe of stream `index` at or before `timestamp` (in the stream's time base). Which
    /// timestamp a demuxer compares (MP4: decode, Matroska: presentation) and how exactly it lands is its own, so the
    /// caller checks what it reads next; the MP4 demuxer cannot seek by byte, hence by time.
    package func seek(stream index: Int, toKeyframeAtOrBefore timestamp: Int64) throws {
        try check(
            av_seek_frame(self.pointer, Int32(index), timestamp, AVSEEK_FLAG_BACKWARD),
            "av_seek_frame",
            file: self.path,
            code: .invalidInput
        )
    }

    /// Reads the next packet; false at the end of the file.
    package func read(into packet: Packet) throws -> Bool {
        let result = av_read_frame(self.pointer, packet.pointer)
        if result == farm_averror_eof() { return false }
        try check(result, "av_read_frame", file: self.path, code: .invalidInput)
        return true
    }
}

/// One stream of an open `InputFile`, which it keeps open.
package struct MediaStream {
    package let file: InputFile
    /// The stream's index in its file.
    package let index: Int
    package let pointer: UnsafeMutablePointer<AVStream>

    package var timeBase: AVRational { self.pointer.pointee.time_base }

    /// The stream's codec parameters (a copy: the codec, picture size, sample rate, extradata pointer, ...).
    package var parameters: AVCodecParameters { self.pointer.pointee.codecpar.pointee }

    /// The stream's codec; `AV_CODEC_ID_NONE` when it has no codec parameters.
    package var codecID: AVCodecID { self.pointer.pointee.codecpar?.pointee.codec_id ?? AV_CODEC_ID_NONE }

    /// The average frame rate the demuxer measured or read; 0/0 when unknown.
    package var averageFrameRate: AVRational { self.pointer.pointee.avg_frame_rate }

    /// The lowest frame rate that represents every timestamp exactly (`r_frame_rate`).
    package var baseFrameRate: AVRational { self.pointer.pointee.r_frame_rate }

    /// Which packets of the stream the demuxer drops instead of returning them.
    package var discard: AVDiscard {
        get { self.pointer.pointee.discard }
        nonmutating set { self.pointer.pointee.discard = newValue }
    }
}

/// A decoder for one stream of an input.
package final class CodecDecoder {
    package let pointer: UnsafeMutablePointer<AVCodecContext>
    package let path: String

    package init(stream: MediaStream, path: String, threads: Int32 = 1) throws {
        self.path = path
        let parameters = stream.pointer.pointee.codecpar!
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            let name = String(cString: avcodec_get_name(parameters.pointee.codec_id))
            throw MediaError(.unsupportedInput, "\(path): no decoder for codec \(name) in this libav build")
        }
        guard let context = avcodec_alloc_context3(codec) else { fatalError("avcodec_alloc_context3: out of memory") }
        self.pointer = context
        try check(avcodec_parameters_to_context(context, parameters), "avcodec_parameters_to_context", file: path)
        context.pointee.pkt_timebase = stream.timeBase
        context.pointee.thread_count = threads
        // Fail on damaged data instead of concealing it: a concealed error would pass every frame count with a
        // broken picture, and farm never publishes a broken stream.
        context.pointee.err_recognition |= AV_EF_EXPLODE
        try check(avcodec_open2(context, codec, nil), "avcodec_open2 (decoder)", file: path, code: .invalidInput)
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecContext>? = self.pointer
        avcodec_free_context(&pointer)
    }

    /// Whether damaged data fails the decode (the default). Pre-roll pictures that are decoded only to fill the
    /// reference buffers may name references from before the keyframe decoding started at: the decoder is lenient
    /// for those and strict again for every frame that is output. libavcodec reads the flag per picture.
    package var isStrict: Bool {
        get { self.pointer.pointee.err_recognition & AV_EF_EXPLODE != 0 }
        set {
            if newValue {
                self.pointer.pointee.err_recognition |= AV_EF_EXPLODE
            } else {
                self.pointer.pointee.err_recognition &= ~AV_EF_EXPLODE
            }
        }
    }

    /// The channel layout of the decoded audio (a shallow copy, valid while the decoder is).
    package var channelLayout: AVChannelLayout { self.pointer.pointee.ch_layout }

    package var sampleFormat: AVSampleFormat { self.pointer.pointee.sample_fmt }

    package var sampleRate: Int32 { self.pointer.pointee.sample_rate }

    /// The codec profile the decoder found in the stream (`FF_PROFILE_UNKNOWN` before the first frames).
    package var profile: Int32 { self.pointer.pointee.profile }

    /// Forgets every picture and packet it holds, to decode again from another position (after a seek).
    package func flush() { avcodec_flush_buffers(self.pointer) }

    /// Sends a packet, or nil to drain.
    package func send(_ packet: Packet?) throws {
        let result = avcodec_send_packet(self.pointer, packet?.pointer)
        if result == farm_averror_eof() { return }
        try check(result, "avcodec_send_packet", file: self.path, code: .invalidInput)
    }

    /// Receives the next frame; false when the decoder needs more input or is drained.
    package func receive(into frame: Frame) throws -> Bool {
        let result = avcodec_receive_frame(self.pointer, frame.pointer)
        if result == farm_averror_eagain() || result == farm_averror_eof() { return false }
        try check(result, "avcodec_receive_frame", file: self.path, code: .invalidInput)
        return true
    }
}

/// An encoder; configured by its caller before `open`.
package final class CodecEncoder {
    package let pointer: UnsafeMutablePointer<AVCodecContext>
    package let codec: UnsafePointer<AVCodec>
    package let label: String

    package init(name: String, label: String) throws {
        self.label = label
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw MediaError(
                .encodingFailed,
                "\(label): encoder \(name) is not in this libav build; install ffmpeg's libav with \(name)"
            )
        }
        guard let context = avcodec_alloc_context3(codec) else { fatalError("avcodec_alloc_context3: out of memory") }
        self.codec = codec
        self.pointer = context
    }

    deinit {
        var pointer: UnsafeMutablePointer<AVCodecContext>? = self.pointer
        avcodec_free_context(&pointer)
    }

    /// Sets up the codec context before `open`, in one place per encoder: the settings only its setup writes.
    package func configure(_ body: (inout AVCodecContext) throws -> Void) rethrows {
        try body(&self.pointer.pointee)
    }

    package var timeBase: AVRational { self.pointer.pointee.time_base }

    /// The channel layout the encoder takes (a shallow copy, valid while the encoder is).
    package var channelLayout: AVChannelLayout { self.pointer.pointee.ch_layout }

    package var sampleFormat: AVSampleFormat { self.pointer.pointee.sample_fmt }

    package var sampleRate: Int32 { self.pointer.pointee.sample_rate }

    /// Samples per channel in every audio frame but the last, once open.
    package var frameSize: Int32 { self.pointer.pointee.frame_size }

    /// Samples of priming the encoder's first packet starts with, once open.
    package var initialPadding: Int32 { self.pointer.pointee.initial_padding }

    /// The fixed quantiser, in lambda units, of an encoder set up with `AV_CODEC_FLAG_QSCALE`.
    package var globalQuality: Int32 { self.pointer.pointee.global_quality }

    package func setOption(_ name: String, _ value: String) throws {
        try check(
            av_opt_set(self.pointer.pointee.priv_data, name, value, 0),
            "av_opt_set \(name)=\(value)",
            file: self.label
        )
    }

    package func open() throws {
        try check(avcodec_open2(self.pointer, self.codec, nil), "avcodec_open2 (encoder)", file: self.label)
    }

    package func send(_ frame: Frame?) throws {
        try check(avcodec_send_frame(self.pointer, frame?.pointer), "avcodec_send_frame", file: self.label)
    }

    package func receive(into packet: Packet) throws -> Bool {
        let result = avcodec_receive_packet(self.pointer, packet.pointer)
        if result == farm_averror_eagain() || result == farm_averror_eof() { return false }
        try check(result, "avcodec_receive_packet", file: self.label)
        return true
    }
}

/// Converts frames to one size and pixel format.
package final class Scaler {
    package let pointer: OpaquePointer
    package let width: Int32
    package let height: Int32
    package let format: AVPixelFormat

    /// The YUV matrix the pictures come out in, and are tagged with.
    package let colorspace: AVColorSpace

    /// - Parameter colorspace: the YUV matrix to convert to; by default BT.709 (what renditions are), or BT.601 for
    ///   the full-range JPEG formats (what JFIF means). `farm verify` passes a rendition's own, so a reference
    ///   picture is compared in the matrix the rendition is in (an untagged one read as players read it).
    package init(
        from frame: Frame,
        width: Int32,
        height: Int32,
        format: AVPixelFormat,
        colorspace: AVColorSpace? = nil
    ) throws {
        // Bit-exact, accurately rounded scaling: the same input gives the same pixels on any CPU, which the
        // farm's byte-identical retries depend on.
        let flags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT
        let source = frame.pointer
        guard
            let context = sws_getContext(
                source.pointee.width,
                source.pointee.height,
                AVPixelFormat(rawValue: source.pointee.format),
                width,
                height,
                format,
                Int32(flags),
                nil,
                nil,
                nil
            )
        else {
            throw MediaError(
                .encodingFailed,
                "sws_getContext failed for \(source.pointee.width)x\(source.pointee.height) to \(width)x\(height)"
            )
        }
        self.pointer = context
        self.width = width
        self.height = height
        self.format = format
        let outputFull = Self.fullRangeFormats.contains(format)
        self.colorspace = colorspace ?? (outputFull ? AVCOL_SPC_BT470BG : AVCOL_SPC_BT709)
        // Ranges and matrices set explicitly: swscale alone treats a full-range picture in a plain format (10-bit,
        // VP9) as limited (washed-out blacks and whites), and converts no matrix.
        let picture = source.pointee
        let sourceFull =
            picture.color_range == AVCOL_RANGE_JPEG || Self.fullRangeFormats.contains(AVPixelFormat(picture.format))
        _ = sws_setColorspaceDetails(
            context,
            sws_getCoefficients(Self.matrix(of: picture.colorspace, height: picture.height)),
            sourceFull ? 1 : 0,
            sws_getCoefficients(Self.matrix(of: self.colorspace, height: height)),
            outputFull ? 1 : 0,
            0,
            1 << 16,
            1 << 16
        )
    }

    deinit { sws_freeContext(self.pointer) }

    /// The deprecated "J" formats, which mean full range.
    private static let fullRangeFormats: Set<AVPixelFormat> = [
        AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUVJ411P,
    ]

    /// swscale's matrix for a picture's YUV matrix; an untagged picture is BT.601 below 720 lines and BT.709 from
    /// there, as players assume.
    private static func matrix(of space: AVColorSpace, height: Int32) -> Int32 {
        switch space {
        case AVCOL_SPC_BT709: SWS_CS_ITU709
        case AVCOL_SPC_BT470BG, AVCOL_SPC_SMPTE170M: SWS_CS_ITU601
        case AVCOL_SPC_SMPTE240M: SWS_CS_SMPTE240M
        case AVCOL_SPC_FCC: SWS_CS_FCC
        case AVCOL_SPC_BT2020_NCL, AVCOL_SPC_BT2020_CL: SWS_CS_BT2020
        default: height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601
        }
    }

    package func scale(_ source: Frame) throws -> Frame {
        let output = Frame()
        output.pointer.pointee.width = self.width
        output.pointer.pointee.height = self.height
        output.pointer.pointee.format = self.format.rawValue
        try check(av_frame_get_buffer(output.pointer, 0), "av_frame_get_buffer", file: "scaler")
        try check(sws_scale_frame(self.pointer, output.pointer, source.pointer), "sws_scale_frame", file: "scaler")
        output.fillRowPadding()
        output.pointer.pointee.pts = source.pointer.pointee.pts
        let full = Self.fullRangeFormats.contains(self.format)
        output.pointer.pointee.color_range = full ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG
        output.pointer.pointee.colorspace = self.colorspace
        if !full, self.colorspace == AVCOL_SPC_BT709 {
            output.pointer.pointee.color_primaries = AVCOL_PRI_BT709
            output.pointer.pointee.color_trc = AVCOL_TRC_BT709
        }
        return output
    }
}
