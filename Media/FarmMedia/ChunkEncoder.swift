import CFFmpeg
import FarmFormats
import FarmProtocol
import Foundation

/// A file an encode produced, ready to be sent to the coordinator.
package struct EncodedFile: Sendable {
    /// Where the bytes are on this machine.
    package var localPath: String
    package var description: OutputFile
}

/// Encodes one task: a chunk of video into every rendition, or a job's whole audio track.
public struct ChunkEncoder: Sendable {
    public let spec: TaskSpec
    /// The chunk's source container, as the coordinator sent it.
    public let sourcePath: String
    /// An empty folder for the outputs.
    public let workDirectory: String

    public init(spec: TaskSpec, sourcePath: String, workDirectory: String) {
        self.spec = spec
        self.sourcePath = sourcePath
        self.workDirectory = workDirectory
    }

    /// Runs the encode. `progress` is called with the fraction done; returning false from it abandons the work
    /// (the lease was lost) with a `CancellationError`.
    package func run(progress: (Double) -> Bool) throws -> [EncodedFile] {
        MediaLogging.quiet()
        DeterministicMemory.enable()
        switch self.spec.kind {
        case .video: return try VideoChunkEncode(task: self).run(progress: progress)
        case .audio: return try AudioTrackEncode(task: self).run(progress: progress)
        }
    }

    /// Splits a finished fragmented MP4 into `init.mp4` and numbered segments in the rendition's folder, named as
    /// `OutputNames` says.
    func splitFragments(
        mp4Path: String,
        rendition: String,
        segmentTimes: [(start: Int64, duration: Int64, frames: Int)],
        firstSegmentIndex: Int,
        timeBase: Rational,
        compositionShift: Int64 = 0
    ) throws -> [EncodedFile] {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: mp4Path)))
        let fragments = try MP4Boxes.fragments(bytes)
        guard fragments.segments.count == segmentTimes.count else {
            throw MediaError(
                .encodingFailed,
                "\(rendition): the muxer wrote \(fragments.segments.count) fragments for \(segmentTimes.count) segments"
            )
        }
        let folder = URL(fileURLWithPath: self.workDirectory).appendingPathComponent(rendition)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        func save(_ range: Range<Int>, name: String, compositionShift: Int64 = 0) throws -> (String, Int64, String) {
            var fragment = Array(bytes[range])
            try MP4Boxes.shiftCompositionOffsets(inFragment: &fragment, by: compositionShift)
            let data = Data(fragment)
            let path = folder.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            return (path, Int64(data.count), sha256Hex(data))
        }
        var files: [EncodedFile] = []
        let (initPath, initBytes, initHash) = try save(fragments.initSegment, name: OutputNames.initSegment)
        files.append(
            EncodedFile(
                localPath: initPath,
                description: OutputFile(
                    rendition: rendition,
                    role: .initSegment,
                    segmentIndex: nil,
                    path: OutputNames.initSegmentPath(rendition: rendition),
                    bytes: initBytes,
                    sha256: initHash,
                    startPTS: 0,
                    duration: 0,
                    frames: 0,
                    timeBase: timeBase
                )
            )
        )
        for (offset, range) in fragments.segments.enumerated() {
            let index = firstSegmentIndex + offset
            let name = OutputNames.segmentFileName(index: index)
            let (path, size, hash) = try save(range, name: name, compositionShift: compositionShift)
            let times = segmentTimes[offset]
            files.append(
                EncodedFile(
                    localPath: path,
                    description: OutputFile(
                        rendition: rendition,
                        role: .segment,
                        segmentIndex: index,
                        path: OutputNames.segmentPath(rendition: rendition, index: index),
                        bytes: size,
                        sha256: hash,
                        startPTS: times.start,
                        duration: times.duration,
                        frames: times.frames,
                        timeBase: timeBase
                    )
                )
            )
        }
        try? FileManager.default.removeItem(atPath: mp4Path)
        return files
    }
}

/// Decodes a video chunk by presentation time and encodes each rendition with libx264.
private struct VideoChunkEncode {
    let task: ChunkEncoder
    var spec: TaskSpec { self.task.spec }

    /// One rendition's encoder, scaler and muxer.
    final class Rung {
        let rendition: RenditionSpec
        let encoder: CodecEncoder
        var scaler: UprightScaler?
        let container: OutputContainer
        let stream: Int
        let mp4Path: String
        /// How long each picture sent is shown, by its presentation time.
        var durations: [Int64: Int64] = [:]
        var wroteAny = false
        /// The presentation times sent to the encoder, in order: the n-th packet out decodes at the n-th of them,
        /// so a segment's first picture decodes at its own source time (and is shown `presentationDelay` later)
        /// and the decode times are the frames' own (exact with any frame rate), whatever the encoder's reordering.
        var presentationTimes: [Int64] = []
        var packetsWritten = 0
        /// How much later than its source time every picture is shown (the task's time base): the job's
        /// `TaskSpec.presentationDelay`, which makes B-frames, decoding after they are shown, need no negative
        /// composition offset. 0 without B-frames.
        let presentationDelay: Int64
        /// For tasks planned before the job had a presentation delay: how much later than shown every B-frame job's
        /// picture is muxed (stream units), taken back from the segments' composition offsets
        /// (`MP4Boxes.shiftCompositionOffsets`), which become negative. Such a job's retries must match what was
        /// encoded then.
        var legacyMuxingDelay: Int64 = 0

        init(
            rendition: RenditionSpec,
            spec: TaskSpec,
            sourceSAR: AVRational,
            sourceWidth: Int32,
            sourceHeight: Int32,
            workDirectory: String
        ) throws {
            self.rendition = rendition
            let settings = spec.settings
            let label = "\(spec.chunkName) \(rendition.name)"
            self.encoder = try CodecEncoder(name: settings.codec, label: label)
            self.encoder.configure { context in
                context.width = Int32(rendition.width)
                context.height = Int32(rendition.height)
                context.pix_fmt = AV_PIX_FMT_YUV420P
                // What the scaler makes of every source (UprightScaler): BT.709, limited range, SDR; said in the VUI
                // so players need not guess from the picture size.
                context.color_primaries = AVCOL_PRI_BT709
                context.color_trc = AVCOL_TRC_BT709
                context.colorspace = AVCOL_SPC_BT709
                context.color_range = AVCOL_RANGE_MPEG
                context.time_base = spec.timeBase.av
                // Square pixels in the output: the rung's width already carries the display aspect ratio.
                context.sample_aspect_ratio = AVRational(num: 1, den: 1)
                context.thread_count = Int32(settings.threads)
                context.max_b_frames = Int32(settings.bFrames)
                let frameRate = spec.frameRate.num > 0 ? spec.frameRate : Rational(25, 1)
                context.framerate = frameRate.av
                context.gop_size = Int32(
                    max(1, (settings.maxKeyframeInterval * frameRate.doubleValue).rounded(.down))
                )
                context.rc_max_rate = Int64(rendition.maxBitrate)
                context.rc_buffer_size = Int32(rendition.maxBitrate * 2)
                context.flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_BITEXACT
            }
            if settings.codec == "libx264" {
                try self.encoder.setOption("preset", settings.preset)
                try self.encoder.setOption("crf", String(settings.crf))
                // Forced keyframes must be IDRs, GOPs closed and scene cuts off, so that every rung of every chunk
                // has its keyframes at the same timestamps (ABR switching) and segments start independently.
                try self.encoder.setOption("forced-idr", "1")
                try self.encoder.setOption("x264-params", "scenecut=0:open-gop=0:bframes=\(settings.bFrames)")
            }
            try self.encoder.open()
            self.mp4Path = (workDirectory as NSString).appendingPathComponent("\(rendition.name).mp4")
            self.container = try OutputContainer(path: self.mp4Path, format: "mp4")
            self.stream = try self.container.addStream(encoder: self.encoder)
            self.presentationDelay = spec.presentationDelay ?? 0
            if spec.presentationDelay == nil, settings.bFrames > 0 {
                // A picture is reordered by a few frames; 2^24 units (at least three minutes in any timescale libav
                // picks for video) is more than any reordering and still fits a composition offset.
                self.legacyMuxingDelay = 1 << 24
            }
            try self.container.writeHeader(
                options: OutputContainer.fragmentedMP4Options(firstFragmentNumber: spec.firstSegmentIndex + 1)
            )
        }
    }

    func run(progress: (Double) -> Bool) throws -> [EncodedFile] {
        let input = try InputFile(path: self.task.sourcePath)
        guard let videoIndex = input.bestStream(AVMEDIA_TYPE_VIDEO) else {
            throw MediaError(.invalidInput, "\(self.label): the chunk has no video stream")
        }
        let stream = input.stream(videoIndex)
        let decoder = try CodecDecoder(stream: stream, path: self.label, threads: 1)
        let parameters = stream.parameters
        let rungs = try self.spec.renditions.map {
            try Rung(
                rendition: $0,
                spec: self.spec,
                sourceSAR: parameters.sample_aspect_ratio,
                sourceWidth: parameters.width,
                sourceHeight: parameters.height,
                workDirectory: self.task.workDirectory
            )
        }
        let segmentStarts = Set(self.spec.segmentStarts)
        let origin = self.spec.originPTS
        let expectedFrames = max(self.spec.frameCount, 1)
        var framesEncoded = 0
        var segmentTimes: [(start: Int64, duration: Int64, frames: Int)] = []
        // Frames are held back by one so the duration of each is known (the next one's pts minus its own).
        var pending: Frame?
        var lastDuration: Int64 = 0

        func encode(_ frame: Frame, duration: Int64) throws {
            let pts = frame.pts
            if segmentStarts.contains(pts) {
                segmentTimes.append((pts - origin, 0, 0))
            }
            guard !segmentTimes.isEmpty else {
                throw MediaError(
                    .encodingFailed,
                    "\(self.label): first frame \(pts) is not the chunk's first segment start"
                )
            }
            segmentTimes[segmentTimes.count - 1].duration += duration
            segmentTimes[segmentTimes.count - 1].frames += 1
            for rung in rungs {
                if rung.scaler == nil {
                    rung.scaler = try UprightScaler(
                        from: frame,
                        width: rung.rendition.width,
                        height: rung.rendition.height,
                        rotation: self.spec.rotation ?? 0,
                        format: AV_PIX_FMT_YUV420P
                    )
                }
                let scaled = try rung.scaler!.scale(frame)
                scaled.pts = pts - origin
                scaled.pictureType = segmentStarts.contains(pts) ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
                rung.durations[pts - origin] = duration
                rung.presentationTimes.append(pts - origin)
                try rung.encoder.send(scaled)
                try self.drain(rung)
            }
            framesEncoded += 1
            guard progress(Double(framesEncoded) / Double(expectedFrames)) else { throw CancellationError() }
        }

        // The chunk's container may use a finer time base than the source; the plan's timestamps are in the source's.
        let chunkTimeBase = stream.timeBase
        let specTimeBase = self.spec.timeBase.av
        func accept(_ decoded: Frame) throws {
            let pts = decoded.pts
            guard pts >= self.spec.startPTS, self.spec.endPTS.map({ pts < $0 }) ?? true else { return }
            guard !decoded.hasDecodeErrors else {
                throw MediaError(
                    .invalidInput,
                    "\(self.label): the frame at \(self.spec.timeBase.seconds(pts - origin)) s decodes with errors; "
                        + "the source is damaged there"
                )
            }
            if let previous = pending {
                let previousPTS = previous.pts
                guard pts > previousPTS else {
                    throw MediaError(
                        .invalidInput,
                        "\(self.label): frame timestamps go backwards at \(pts); the source is damaged"
                    )
                }
                lastDuration = pts - previousPTS
                try encode(previous, duration: lastDuration)
            }
            let kept = Frame()
            av_frame_move_ref(kept.pointer, decoded.pointer)
            pending = kept
        }

        // Deinterlacing and tone mapping see every decoded picture, pre-roll included, so the chunk's first frame
        // is filtered with its real neighbour; the chunk's range is taken after.
        let converter = PictureConverter(self.spec.conversion, label: self.label)
        func convert(_ decoded: Frame) throws {
            // Neither timestamp known: `farm_nopts_value()` is rescaled like any other timestamp.
            let pts = decoded.presentationTimestamp ?? farm_nopts_value()
            decoded.pts = av_rescale_q(pts, chunkTimeBase, specTimeBase)
            for converted in try converter.push(decoded, timeBase: specTimeBase) { try accept(converted) }
            decoded.unref()
        }

        let packet = Packet()
        let frame = Frame()
        // The chunk starts at a keyframe. In an open GOP, the pictures after it in decode order but before it in
        // presentation (leading pictures) reference the previous GOP, which this chunk does not have; they show
        // before the chunk's first frame, so they are not sent to the decoder. The pre-roll pictures that follow
        // (before the chunk's start) may still name those missing references, harmlessly for them: the decoder is
        // lenient while it reads them, and strict for every picture the chunk outputs.
        var keyframePTS: Int64?
        let startInChunk = av_rescale_q(self.spec.startPTS, specTimeBase, chunkTimeBase)
        while try input.read(into: packet) {
            defer { packet.unref() }
            guard packet.streamIndex == videoIndex else { continue }
            let packetPTS = packet.pts
            if packetPTS != farm_nopts_value() {
                if let keyframePTS, packetPTS < keyframePTS { continue }
                if keyframePTS == nil { keyframePTS = packetPTS }
            }
            decoder.isStrict = packetPTS == farm_nopts_value() || packetPTS >= startInChunk
            try decoder.send(packet)
            while try decoder.receive(into: frame) { try convert(frame) }
        }
        try decoder.send(nil)
        while try decoder.receive(into: frame) { try convert(frame) }
        for converted in try converter.flush() { try accept(converted) }
        if let last = pending {
            let pts = last.pts
            var duration =
                self.spec.endPTS.map { $0 - pts }
                ?? av_rescale_q(last.packetDuration, chunkTimeBase, specTimeBase)
            if duration <= 0 { duration = lastDuration > 0 ? lastDuration : 1 }
            try encode(last, duration: duration)
        }
        guard framesEncoded > 0 else {
            throw MediaError(
                .invalidInput,
                "\(self.label): no frame of the chunk could be decoded; the source is damaged"
            )
        }
        if self.spec.frameCount > 0, framesEncoded != self.spec.frameCount {
            throw MediaError(
                .invalidInput,
                "\(self.label): decoded \(framesEncoded) frames where the source index has \(self.spec.frameCount); "
                    + "the source is damaged"
            )
        }
        var files: [EncodedFile] = []
        for rung in rungs {
            try rung.encoder.send(nil)
            try self.drain(rung)
            try rung.container.finish()
            files += try self.task.splitFragments(
                mp4Path: rung.mp4Path,
                rendition: rung.rendition.name,
                segmentTimes: segmentTimes,
                firstSegmentIndex: self.spec.firstSegmentIndex,
                timeBase: self.spec.timeBase,
                compositionShift: rung.legacyMuxingDelay
            )
        }
        return files
    }

    private var label: String { self.spec.chunkLabel }

    private func drain(_ rung: Rung) throws {
        let packet = Packet()
        let segmentStarts = Set(self.spec.segmentStarts.map { $0 - self.spec.originPTS })
        while try rung.encoder.receive(into: packet) {
            defer { packet.unref() }
            let pts = packet.pts
            if rung.wroteAny, segmentStarts.contains(pts) {
                try rung.container.flushFragment()
            }
            guard rung.packetsWritten < rung.presentationTimes.count else {
                throw MediaError(.encodingFailed, "\(self.label): the encoder returned more pictures than it was sent")
            }
            packet.dts = rung.presentationTimes[rung.packetsWritten]
            rung.packetsWritten += 1
            // A sample lasts until the next one decodes: the length of the picture shown at this decode time, not of
            // this picture. They differ with B-frames, and a fragment's last sample must reach the next segment's
            // first picture even when frames are of unequal length.
            packet.duration = rung.durations.removeValue(forKey: packet.dts) ?? 0
            guard packet.dts <= pts + rung.presentationDelay || rung.legacyMuxingDelay > 0 else {
                throw MediaError(
                    .encodingFailed,
                    "\(self.label): a picture decodes \(packet.dts - pts) units after it is shown, more than the job's "
                        + "presentation delay of \(rung.presentationDelay); the encoder reorders more than the plan allows"
                )
            }
            packet.pts = pts + rung.presentationDelay
            try rung.container.write(
                packet,
                stream: rung.stream,
                from: self.spec.timeBase.av,
                presentationDelay: rung.legacyMuxingDelay
            )
            rung.wroteAny = true
        }
    }
}
