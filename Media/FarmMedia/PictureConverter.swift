import CFFmpeg
import FarmFormats
import FarmProtocol

extension PictureConversion {
    /// What a source stream's signalling asks for: deinterlacing when its field order is interlaced (DV always is),
    /// tone mapping when its transfer is PQ or HLG. Renditions, `farm verify`'s reference pictures and thumbnails
    /// all read it from here, so they agree.
    package static func of(stream: MediaStream) -> PictureConversion {
        let parameters = stream.parameters
        let interlacedOrders: Set<UInt32> = [
            AV_FIELD_TT.rawValue, AV_FIELD_BB.rawValue, AV_FIELD_TB.rawValue, AV_FIELD_BT.rawValue,
        ]
        let interlaced =
            interlacedOrders.contains(parameters.field_order.rawValue) || parameters.codec_id == AV_CODEC_ID_DVVIDEO
        let highDynamicRange: HighDynamicRange? =
            switch parameters.color_trc {
            case AVCOL_TRC_SMPTE2084: .pq
            case AVCOL_TRC_ARIB_STD_B67: .hlg
            default: nil
            }
        return PictureConversion(deinterlace: interlaced, highDynamicRange: highDynamicRange)
    }

    /// The libavfilter chain, or nil when pictures pass through unchanged.
    ///
    /// Deinterlacing is `bwdif` sending one frame per frame, so the output keeps the source's frames and times.
    /// Tone mapping goes to linear light (100 nits nominal peak), converts BT.2020 primaries to BT.709, compresses
    /// highlights with Hable's curve (no desaturation), then back to BT.709 limited-range 4:2:0.
    package var filterDescription: String? {
        var filters: [String] = []
        if self.deinterlace { filters.append("bwdif=mode=send_frame:parity=auto:deint=all") }
        if let highDynamicRange {
            let transfer = highDynamicRange == .pq ? "smpte2084" : "arib-std-b67"
            filters += [
                "zscale=tin=\(transfer):min=bt2020nc:pin=bt2020:t=linear:npl=100",
                "format=gbrpf32le",
                "zscale=p=bt709",
                "tonemap=tonemap=hable:desat=0",
                "zscale=t=bt709:m=bt709:r=tv",
                "format=yuv420p",
            ]
        }
        return filters.isEmpty ? nil : filters.joined(separator: ",")
    }
}

/// Runs decoded pictures through a `PictureConversion` (a libavfilter graph), keeping their timestamps. Filters may
/// hold pictures back (the deinterlacer needs the next one), so each push returns what is ready, and `flush` the
/// rest. Without a conversion, pictures pass through as they are.
package final class PictureConverter {
    private let description: String?
    private let label: String
    private var graph: FilterGraph?

    package init(_ conversion: PictureConversion?, label: String) {
        self.description = conversion?.filterDescription
        self.label = label
    }

    /// Converts `frame` (its `pts` in `timeBase`); the frames returned are new, `frame` is left as it was.
    package func push(_ frame: Frame, timeBase: AVRational) throws -> [Frame] {
        guard let description else {
            let copy = Frame()
            try check(av_frame_ref(copy.pointer, frame.pointer), "av_frame_ref", file: self.label)
            return [copy]
        }
        if self.graph == nil {
            self.graph = try FilterGraph(description, input: frame, timeBase: timeBase, label: self.label)
        }
        return try self.graph!.push(frame)
    }

    /// The pictures still held back, at the end of the stream.
    package func flush() throws -> [Frame] {
        try self.graph?.push(nil) ?? []
    }
}

/// A libavfilter graph from a buffer source to a buffer sink, configured for the first picture's size and format.
package final class FilterGraph {
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private let source: UnsafeMutablePointer<AVFilterContext>
    private let sink: UnsafeMutablePointer<AVFilterContext>
    private let label: String
    private let timeBase: AVRational

    package init(_ description: String, input frame: Frame, timeBase: AVRational, label: String) throws {
        self.label = label
        self.timeBase = timeBase
        guard let graph = avfilter_graph_alloc() else { fatalError("avfilter_graph_alloc: out of memory") }
        self.graph = graph
        // One thread: the same bytes on every agent, and the task's thread count stays the only parallelism.
        graph.pointee.nb_threads = 1
        var aspect = frame.sampleAspectRatio
        if aspect.num <= 0 || aspect.den <= 0 { aspect = AVRational(num: 1, den: 1) }
        let arguments =
            "video_size=\(frame.width)x\(frame.height):pix_fmt=\(frame.pixelFormat.rawValue)"
            + ":time_base=\(timeBase.num)/\(timeBase.den):pixel_aspect=\(aspect.num)/\(aspect.den)"
        var source: UnsafeMutablePointer<AVFilterContext>?
        var sink: UnsafeMutablePointer<AVFilterContext>?
        do {
            try check(
                avfilter_graph_create_filter(&source, avfilter_get_by_name("buffer"), "in", arguments, nil, graph),
                "avfilter_graph_create_filter (buffer \(arguments))",
                file: label
            )
            try check(
                avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nil, nil, graph),
                "avfilter_graph_create_filter (buffersink)",
                file: label
            )
            var outputs = avfilter_inout_alloc()
            var inputs = avfilter_inout_alloc()
            defer {
                avfilter_inout_free(&outputs)
                avfilter_inout_free(&inputs)
            }
            outputs!.pointee.name = av_strdup("in")
            outputs!.pointee.filter_ctx = source
            outputs!.pointee.pad_idx = 0
            outputs!.pointee.next = nil
            inputs!.pointee.name = av_strdup("out")
            inputs!.pointee.filter_ctx = sink
            inputs!.pointee.pad_idx = 0
            inputs!.pointee.next = nil
            try check(
                avfilter_graph_parse_ptr(graph, description, &inputs, &outputs, nil),
                "avfilter_graph_parse_ptr (\(description))",
                file: label
            )
            try check(avfilter_graph_config(graph, nil), "avfilter_graph_config (\(description))", file: label)
        } catch {
            avfilter_graph_free(&self.graph)
            throw error
        }
        self.source = source!
        self.sink = sink!
    }

    deinit { avfilter_graph_free(&self.graph) }

    /// Sends a picture (nil: the end) and returns the pictures the graph has ready.
    package func push(_ frame: Frame?) throws -> [Frame] {
        try check(
            av_buffersrc_add_frame_flags(self.source, frame?.pointer, Int32(AV_BUFFERSRC_FLAG_KEEP_REF)),
            "av_buffersrc_add_frame_flags",
            file: self.label
        )
        var ready: [Frame] = []
        while true {
            let output = Frame()
            let result = av_buffersink_get_frame(self.sink, output.pointer)
            if result == farm_averror_eagain() || result == farm_averror_eof() { return ready }
            try check(result, "av_buffersink_get_frame", file: self.label)
            // The deinterlacer halves its output's time base (it can send fields): back to the input's.
            let sinkTimeBase = av_buffersink_get_time_base(self.sink)
            if output.pts != farm_nopts_value() {
                output.pts = av_rescale_q(output.pts, sinkTimeBase, self.timeBase)
            }
            ready.append(output)
        }
    }
}
