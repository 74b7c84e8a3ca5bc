import CFFmpeg
import FarmFormats
import FarmProtocol
import Foundation

/// The video a job's thumbnails are taken from, with the timeline its plan measured.
package struct ThumbnailSource: Sendable {
    package var path: String
    /// Timestamp of the first presented frame, in the video stream's time base: time 0 of the thumbnails.
    package var originPTS: Int64
    package var durationSeconds: Double
    /// When its keyframes are shown (`ThumbnailPlan.keyframeTimes`): tiles show one inside their cue where they can.
    package var keyframesMS: [Int]

    package init(path: String, originPTS: Int64, durationSeconds: Double, keyframesMS: [Int]) {
        self.path = path
        self.originPTS = originPTS
        self.durationSeconds = durationSeconds
        self.keyframesMS = keyframesMS
    }

    package init(_ info: SourceInfo) {
        let originPTS = info.packets.map(\.pts).min() ?? 0
        self.init(
            path: info.path,
            originPTS: originPTS,
            durationSeconds: info.durationSeconds,
            keyframesMS: ThumbnailPlan.keyframeTimes(
                of: info.packets,
                originPTS: originPTS,
                timeBase: info.video.timeBase
            )
        )
    }
}

/// A job's preview images: `poster.jpg` (one frame a tenth of the way in), and `thumbnails.jpg`, a sprite sheet of
/// one tile every few seconds, with `thumbnails.vtt` telling players which tile covers which time (the WebVTT
/// thumbnail convention: `thumbnails.jpg#xywh=x,y,w,h`).
///
/// Pictures are upright and at the display aspect, like the renditions. The same source gives the same bytes:
/// single-threaded decoding, bit-exact scaling, and a fixed JPEG quantiser.
package enum Thumbnails {
    package static let posterName = "poster.jpg"
    package static let sheetName = "thumbnails.jpg"
    package static let cuesName = "thumbnails.vtt"
    /// JPEG quantiser (2 is best, 31 worst): small files that still look clean at tile size.
    static let quantiser: Int32 = 3

    /// What `write` did.
    package struct Written: Sendable {
        package var plan: ThumbnailPlan
        /// Video packets decoded: a few per tile that shows a keyframe, up to a GOP for one that cannot, never the
        /// whole file once per picture.
        package var packetsDecoded: Int
    }

    /// Writes the three files into `outputDirectory`, all or none.
    @discardableResult
    package static func write(
        from source: ThumbnailSource,
        to outputDirectory: String,
        options: ThumbnailPlan.Options = ThumbnailPlan.Options()
    ) throws -> Written {
        MediaLogging.quiet()
        let seeker = try FrameSeeker(path: source.path, originPTS: source.originPTS)
        let video = seeker.videoInfo
        let display = video.displaySize
        let plan = ThumbnailPlan(
            durationSeconds: source.durationSeconds,
            displayWidth: display.width,
            displayHeight: display.height,
            keyframesMS: source.keyframesMS,
            options: options
        )
        // Pictures in time order, the poster among the tiles, so that the seeker only ever moves forward.
        // HDR sources are tone mapped as the renditions are. Deinterlacing needs a picture's neighbours, which a
        // seek does not decode: a thumbnail of an interlaced source shows its frame as decoded.
        let toneMapper = PictureConverter(
            video.conversion.highDynamicRange.map { PictureConversion(highDynamicRange: $0) },
            label: source.path
        )
        func picture(atMilliseconds time: Int, width: Int, height: Int) throws -> Frame {
            let decoded = try seeker.frame(atMilliseconds: time)
            let frame = try toneMapper.push(decoded, timeBase: AVRational(num: 1, den: 1000)).first ?? decoded
            return try UprightScaler(
                from: frame,
                width: width,
                height: height,
                rotation: video.rotation,
                format: AV_PIX_FMT_YUVJ420P
            ).scale(frame)
        }
        var poster: Frame?
        let sheet = try Frame.black(width: plan.sheetWidth, height: plan.sheetHeight)
        for tile in plan.tiles {
            if poster == nil, tile.pictureMS > plan.posterMS {
                poster = try picture(atMilliseconds: plan.posterMS, width: plan.posterWidth, height: plan.posterHeight)
            }
            sheet.paste(
                try picture(atMilliseconds: tile.pictureMS, width: plan.tileWidth, height: plan.tileHeight),
                x: tile.x,
                y: tile.y
            )
        }
        let posterJPEG = try
            (poster
            ?? picture(atMilliseconds: plan.posterMS, width: plan.posterWidth, height: plan.posterHeight))
            .jpeg(label: "\(source.path): poster")
        let sheetJPEG = try sheet.jpeg(label: "\(source.path): thumbnail sheet")
        let files = [
            (self.posterName, posterJPEG),
            (self.sheetName, sheetJPEG),
            (self.cuesName, Data(plan.webVTT(sheetName: self.sheetName).utf8)),
        ]
        let folder = URL(fileURLWithPath: outputDirectory)
        var written: [URL] = []
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, data) in files {
                let file = folder.appendingPathComponent(name)
                try data.write(to: file, options: .atomic)
                written.append(file)
            }
        } catch {
            for file in written { try? FileManager.default.removeItem(at: file) }
            throw MediaError(.io, "\(outputDirectory): writing the thumbnails failed: \(error)")
        }
        return Written(plan: plan, packetsDecoded: seeker.packetsDecoded)
    }
}

extension Frame {
    /// A full-range 4:2:0 picture of this size, black.
    static func black(width: Int, height: Int) throws -> Frame {
        let frame = Frame()
        frame.width = width
        frame.height = height
        frame.pixelFormat = AV_PIX_FMT_YUVJ420P
        try check(av_frame_get_buffer(frame.pointer, 0), "av_frame_get_buffer", file: "thumbnails")
        for plane in 0..<3 {
            let rows = plane == 0 ? height : (height + 1) / 2
            let stride = Int(farm_frame_linesize(frame.pointer, Int32(plane)))
            farm_frame_data(frame.pointer, Int32(plane))?.update(repeating: plane == 0 ? 0 : 128, count: rows * stride)
        }
        return frame
    }

    /// Copies `picture` (same pixel format, even size) into this one with its top-left corner at even `x`, `y`.
    func paste(_ picture: Frame, x: Int, y: Int) {
        for plane in 0..<3 {
            let shift = plane == 0 ? 0 : 1
            let width = picture.width >> shift
            let height = picture.height >> shift
            guard let from = farm_frame_data(picture.pointer, Int32(plane)),
                let to = farm_frame_data(self.pointer, Int32(plane))
            else { continue }
            let fromStride = Int(farm_frame_linesize(picture.pointer, Int32(plane)))
            let toStride = Int(farm_frame_linesize(self.pointer, Int32(plane)))
            for row in 0..<height {
                (to + ((y >> shift) + row) * toStride + (x >> shift)).update(
                    from: from + row * fromStride,
                    count: width
                )
            }
        }
    }

    /// This full-range 4:2:0 picture as a baseline JPEG (libavcodec's mjpeg encoder, fixed quantiser, one thread).
    func jpeg(label: String) throws -> Data {
        let encoder = try CodecEncoder(name: "mjpeg", label: label)
        encoder.configure { context in
            context.width = Int32(self.width)
            context.height = Int32(self.height)
            context.pix_fmt = AV_PIX_FMT_YUVJ420P
            context.color_range = AVCOL_RANGE_JPEG
            context.sample_aspect_ratio = AVRational(num: 1, den: 1)
            context.time_base = AVRational(num: 1, den: 25)
            context.thread_count = 1
            context.flags |= AV_CODEC_FLAG_QSCALE | AV_CODEC_FLAG_BITEXACT
            context.global_quality = Thumbnails.quantiser * FF_QP2LAMBDA
        }
        try encoder.open()
        self.quality = encoder.globalQuality
        self.colorRange = AVCOL_RANGE_JPEG
        self.pts = 0
        try encoder.send(self)
        try encoder.send(nil)
        let packet = Packet()
        var data = Data()
        while try encoder.receive(into: packet) {
            defer { packet.unref() }
            guard let bytes = packet.payload else { continue }
            data.append(bytes)
        }
        guard !data.isEmpty else {
            throw MediaError(.encodingFailed, "\(label): the JPEG encoder produced no picture")
        }
        return data
    }
}
