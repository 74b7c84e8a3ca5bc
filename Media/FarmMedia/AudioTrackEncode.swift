import CFFmpeg
import FarmFormats
import FarmProtocol
import Foundation

/// Encodes a job's whole audio track once, as AAC-LC, cut into fragments at the job's segment boundaries.
///
/// Encoding audio once per job (not per chunk) means no AAC priming at chunk seams and no split audio frame.
struct AudioTrackEncode {
    let task: ChunkEncoder
    var spec: TaskSpec { self.task.spec }

    static let renditionName = OutputNames.audioRendition

    func run(progress: (Double) -> Bool) throws -> [EncodedFile] {
        let label = "audio track"
        let settings = self.spec.settings
        let input = try InputFile(path: self.task.sourcePath)
        guard let audioIndex = input.bestStream(AVMEDIA_TYPE_AUDIO) else {
            throw MediaError(.invalidInput, "\(label): the source sent has no audio stream")
        }
        let stream = input.stream(audioIndex)
        let inputTimeBase = stream.timeBase
        let decoder = try CodecDecoder(stream: stream, path: label)

        let encoder = try CodecEncoder(name: "aac", label: label)
        let sampleRate = Int32(settings.audioSampleRate)
        encoder.configure { context in
            context.sample_rate = sampleRate
            context.sample_fmt = AV_SAMPLE_FMT_FLTP
            context.bit_rate = Int64(settings.audioBitrate)
            context.time_base = AVRational(num: 1, den: sampleRate)
            context.flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_BITEXACT
            av_channel_layout_default(&context.ch_layout, Int32(settings.audioChannels))
        }
        try encoder.open()
        let frameSize = Int(encoder.frameSize)
        // The encoder's first packet starts `initial_padding` samples before zero (AAC priming). Fragmented MP4 has
        // no negative decode times, so the track is moved later by that much.
        let priming = Int64(encoder.initialPadding)
        // The sound is shown as much later as the job's pictures (`TaskSpec.presentationDelay`), to the nearest
        // sample, so it stays in step with them. The priming is shown before the first picture, so the track moves
        // by the delay less the priming and its first sound is shown with the first picture. A delay shorter than
        // the priming (none without B-frames, or one B-frame at a high frame rate) cannot hold it: the track then
        // does not move and the sound starts the difference late.
        let delay = PresentationDelay.audioShift(
            delay: self.spec.presentationDelay ?? 0,
            timeBase: self.spec.timeBase,
            sampleRate: Int(sampleRate),
            priming: 0
        )
        let shiftPastPriming = max(delay - priming, 0)

        let resampler = try Resampler(decoder: decoder, encoder: encoder, label: label)
        let fifo = AudioFifo(encoder: encoder)

        let workDirectory = self.task.workDirectory
        let mp4Path = (workDirectory as NSString).appendingPathComponent("audio.mp4")
        let container = try OutputContainer(path: mp4Path, format: "mp4")
        let outputStream = try container.addStream(encoder: encoder)
        try container.writeHeader(options: OutputContainer.fragmentedMP4Options(firstFragmentNumber: 1))

        // Where each segment after the first starts, in samples as the sound is shown: where the video's segment
        // shows its first picture (the job's presentation delay after its start), so both cover the same stretch
        // of the job. The encoder's packets are compared as shown too (priming and shift added). The first segment
        // starts with the first packet, the priming's, shown before the first picture.
        let videoTimeBase = self.spec.timeBase
        let boundaries = self.spec.segmentStarts.dropFirst().map { start -> Int64 in
            let seconds = videoTimeBase.seconds(start - self.spec.originPTS)
            return Int64((seconds * Double(sampleRate)).rounded()) + delay
        }
        var segmentTimes: [(start: Int64, duration: Int64, frames: Int)] = []
        var nextBoundary = 0
        var samplesQueued: Int64 = 0
        // Where each decoded frame goes, by its timestamp: audio before the first video frame is trimmed, a late
        // start or a gap is filled with silence, samples that overlap (a seam of clips joined by stream copy) are
        // dropped. Unlike the video's rule (`Frame.presentationTimestamp`), no fallback to `pts`: a frame without a
        // best-effort timestamp follows the one before.
        var timeline = AudioTimeline(tolerance: Int64(sampleRate) / 100)
        let originSeconds = videoTimeBase.seconds(self.spec.originPTS)
        func writePackets() throws {
            let packet = Packet()
            while try encoder.receive(into: packet) {
                defer { packet.unref() }
                packet.pts += priming + shiftPastPriming
                packet.dts += priming + shiftPastPriming
                let pts = packet.pts
                if segmentTimes.isEmpty {
                    segmentTimes.append((pts, 0, 0))
                } else if nextBoundary < boundaries.count, pts >= boundaries[nextBoundary] {
                    try container.flushFragment()
                    while nextBoundary < boundaries.count, pts >= boundaries[nextBoundary] { nextBoundary += 1 }
                    segmentTimes.append((pts, 0, 0))
                }
                segmentTimes[segmentTimes.count - 1].duration += packet.duration
                segmentTimes[segmentTimes.count - 1].frames += 1
                try container.write(packet, stream: outputStream, from: encoder.timeBase)
            }
        }

        func encodeFromFifo(flushing: Bool) throws {
            while fifo.count >= frameSize || (flushing && fifo.count > 0) {
                let frame = try fifo.read(max: frameSize)
                frame.pts = samplesQueued
                samplesQueued += Int64(frame.sampleCount)
                try encoder.send(frame)
                try writePackets()
            }
        }

        let packet = Packet()
        let decoded = Frame()
        var lastProgress = 0.0
        func reportProgress() throws {
            let done = Double(samplesQueued) / Double(max(boundaries.last ?? 1, 1))
            if done - lastProgress > 0.02 {
                lastProgress = done
                guard progress(min(done, 1)) else { throw CancellationError() }
            }
        }
        func place(_ converted: Frame, start: Int64?) throws {
            let placement = timeline.place(start: start, count: Int64(converted.sampleCount))
            // In frame-sized pieces, encoded as they go: a long gap never sits in memory at once.
            var silence = placement.silence
            while silence > 0 {
                let piece = min(silence, Int64(frameSize))
                try fifo.writeSilence(samples: Int(piece))
                silence -= piece
                try encodeFromFifo(flushing: false)
                // A long gap is the task's progress too, and a lost lease stops it.
                try reportProgress()
            }
            try fifo.write(converted, skipping: Int(placement.skip))
            try encodeFromFifo(flushing: false)
        }

        func consume() throws {
            while try decoder.receive(into: decoded) {
                defer { decoded.unref() }
                let start = decoded.bestEffortTimestamp.map { pts in
                    let seconds = Rational(inputTimeBase).seconds(pts) - originSeconds
                    return Int64((seconds * Double(sampleRate)).rounded())
                }
                try place(resampler.convert(decoded), start: start)
            }
            try reportProgress()
        }
        while try input.read(into: packet) {
            defer { packet.unref() }
            guard packet.streamIndex == audioIndex else { continue }
            try decoder.send(packet)
            try consume()
        }
        try decoder.send(nil)
        try consume()
        try place(resampler.flush(), start: nil)
        try encodeFromFifo(flushing: true)
        try encoder.send(nil)
        try writePackets()
        guard !segmentTimes.isEmpty else {
            throw MediaError(.invalidInput, "\(label): no audio could be decoded; the audio stream is damaged")
        }
        try container.finish()
        return try self.task.splitFragments(
            mp4Path: mp4Path,
            rendition: Self.renditionName,
            segmentTimes: segmentTimes,
            firstSegmentIndex: 0,
            timeBase: Rational(1, sampleRate)
        )
    }
}

/// Converts decoded audio to the encoder's sample format, rate and channel layout (downmixing to stereo).
final class Resampler {
    let pointer: OpaquePointer
    let encoder: CodecEncoder

    init(decoder: CodecDecoder, encoder: CodecEncoder, label: String) throws {
        var context: OpaquePointer?
        var inputLayout = decoder.channelLayout
        if inputLayout.order == AV_CHANNEL_ORDER_UNSPEC {
            av_channel_layout_default(&inputLayout, inputLayout.nb_channels)
        }
        var outputLayout = encoder.channelLayout
        try check(
            swr_alloc_set_opts2(
                &context,
                &outputLayout,
                encoder.sampleFormat,
                encoder.sampleRate,
                &inputLayout,
                decoder.sampleFormat,
                decoder.sampleRate,
                0,
                nil
            ),
            "swr_alloc_set_opts2",
            file: label,
            code: .invalidInput
        )
        self.pointer = context!
        self.encoder = encoder
        try check(swr_init(self.pointer), "swr_init", file: label, code: .invalidInput)
    }

    deinit {
        var pointer: OpaquePointer? = self.pointer
        swr_free(&pointer)
    }

    func convert(_ frame: Frame) throws -> Frame {
        try self.run(input: frame.extendedData, count: frame.sampleCount)
    }

    func flush() throws -> Frame { try self.run(input: nil, count: 0) }

    private func run(input: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, count: Int32) throws -> Frame {
        let output = Frame(audioFor: self.encoder, samples: max(swr_get_out_samples(self.pointer, count), 1))
        try check(av_frame_get_buffer(output.pointer, 0), "av_frame_get_buffer", file: "audio resampler")
        let converted = swr_convert(
            self.pointer,
            output.extendedData,
            output.sampleCount,
            UnsafeMutablePointer(mutating: input).map {
                UnsafeMutableRawPointer($0).assumingMemoryBound(to: UnsafePointer<UInt8>?.self)
            },
            count
        )
        try check(converted, "swr_convert", file: "audio resampler", code: .invalidInput)
        output.sampleCount = converted
        return output
    }
}

/// Queues resampled audio so the encoder gets frames of exactly its frame size.
final class AudioFifo {
    let pointer: OpaquePointer
    let encoder: CodecEncoder

    init(encoder: CodecEncoder) {
        self.encoder = encoder
        self.pointer = av_audio_fifo_alloc(
            encoder.sampleFormat,
            encoder.channelLayout.nb_channels,
            1024
        )!
    }

    deinit { av_audio_fifo_free(self.pointer) }

    var count: Int { Int(av_audio_fifo_size(self.pointer)) }

    /// Queues `frame`'s samples after its first `skipping`.
    func write(_ frame: Frame, skipping: Int = 0) throws {
        let samples = Int(frame.sampleCount) - skipping
        guard samples > 0 else { return }
        let format = frame.sampleFormat
        let planes = av_sample_fmt_is_planar(format) != 0 ? Int(frame.channelCount) : 1
        let stride = Int(av_get_bytes_per_sample(format)) * (planes == 1 ? Int(frame.channelCount) : 1)
        var data = (0..<planes).map { plane -> UnsafeMutableRawPointer? in
            frame.extendedData[plane].map { UnsafeMutableRawPointer($0 + skipping * stride) }
        }
        try check(
            av_audio_fifo_write(self.pointer, &data, Int32(samples)),
            "av_audio_fifo_write",
            file: "audio fifo"
        )
    }

    func writeSilence(samples: Int) throws {
        let frame = self.makeFrame(samples: samples)
        av_samples_set_silence(
            frame.extendedData,
            0,
            Int32(samples),
            frame.channelCount,
            frame.sampleFormat
        )
        try self.write(frame)
    }

    func read(max samples: Int) throws -> Frame {
        let frame = self.makeFrame(samples: min(samples, self.count))
        _ = try frame.extendedData.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: 8) { data in
            try check(
                av_audio_fifo_read(self.pointer, data, frame.sampleCount),
                "av_audio_fifo_read",
                file: "audio fifo"
            )
        }
        return frame
    }

    private func makeFrame(samples: Int) -> Frame {
        let frame = Frame(audioFor: self.encoder, samples: Int32(samples))
        av_frame_get_buffer(frame.pointer, 0)
        return frame
    }
}
