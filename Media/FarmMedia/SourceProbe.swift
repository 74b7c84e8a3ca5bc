import CFFmpeg
import FarmFormats
import FarmProtocol
import Foundation

public struct VideoStreamInfo: Sendable, Equatable {
    public var index: Int
    public var codecName: String
    public var width: Int
    public var height: Int
    public var sampleAspectRatio: Rational
    public var timeBase: Rational
    public var frameRate: Rational
    /// The clockwise turn (0, 90, 180 or 270 degrees) that shows the pictures upright (phones' display matrix).
    public var rotation: Int
    /// Deinterlacing and tone mapping the source's signalling asks for.
    public var conversion = PictureConversion()

    /// The picture as displayed: non-square pixels widened or narrowed, then turned upright.
    package var displaySize: (width: Int, height: Int) {
        let sar = self.sampleAspectRatio
        let width = sar.num > 0 && sar.den > 0 ? Int((Double(self.width) * sar.doubleValue).rounded()) : self.width
        return Rotation.turned(width: width, height: self.height, clockwise: self.rotation)
    }
}

extension VideoStreamInfo {
    /// A stream's average frame rate, or its base rate when the demuxer gives no average.
    package static func nominalFrameRate(of stream: MediaStream) -> Rational {
        let average = stream.averageFrameRate
        return Rational(average.num > 0 && average.den > 0 ? average : stream.baseFrameRate)
    }

    init(stream: MediaStream) {
        let parameters = stream.parameters
        self.init(
            index: stream.index,
            codecName: String(cString: avcodec_get_name(parameters.codec_id)),
            width: Int(parameters.width),
            height: Int(parameters.height),
            sampleAspectRatio: Rational(parameters.sample_aspect_ratio),
            timeBase: Rational(stream.timeBase),
            frameRate: Self.nominalFrameRate(of: stream),
            rotation: Rotation.clockwiseDegrees(of: stream),
            conversion: PictureConversion.of(stream: stream)
        )
    }
}

public struct AudioStreamInfo: Sendable, Equatable {
    public var index: Int
    public var codecName: String
    public var sampleRate: Int
    public var channels: Int
    public var timeBase: Rational
}

/// What the coordinator learns of a source before planning: its streams and every video packet, in decode order.
public struct SourceInfo: Sendable {
    public var path: String
    public var formatName: String
    public var video: VideoStreamInfo
    public var audio: AudioStreamInfo?
    /// Video packets in decode (file) order.
    public var packets: [VideoPacket]
    /// When the default audio track's last packet ends, in seconds on the source's clock (nil without audio).
    public var audioEndSeconds: Double?

    /// Presentation duration of the video in seconds.
    public var durationSeconds: Double {
        guard let (first, end) = self.shownRange else { return 0 }
        return self.video.timeBase.seconds(end - first)
    }

    /// When the last shown video frame ends, in seconds on the source's clock.
    public var videoEndSeconds: Double {
        self.shownRange.map { self.video.timeBase.seconds($0.end) } ?? 0
    }

    /// The first shown frame's timestamp and where the last one ends, in the video's time base.
    private var shownRange: (first: Int64, end: Int64)? {
        let shown = self.packets.filter { !$0.isDiscarded }
        guard let first = shown.map(\.pts).min(),
            let last = shown.max(by: { $0.pts < $1.pts })
        else { return nil }
        return (first, last.pts + max(last.duration, 0))
    }

    /// Width of the picture as displayed, honouring non-square pixels and rotation.
    public var displayWidth: Int { self.video.displaySize.width }

    /// Height of the picture as displayed, honouring rotation.
    public var displayHeight: Int { self.video.displaySize.height }
}

public enum SourceProbe {
    /// Probes a file and indexes its video packets. Reads the whole file once, decodes nothing.
    public static func probe(path: String) throws -> SourceInfo {
        MediaLogging.quiet()
        let input = try InputFile(path: path)
        guard let videoIndex = input.bestStream(AVMEDIA_TYPE_VIDEO) else {
            throw MediaError(
                .unsupportedInput,
                "\(path): no video stream (the file has \(input.streamCount) stream(s)); farm transcodes video, "
                    + "submit a file with a video track"
            )
        }
        let videoStream = input.stream(videoIndex)
        let parameters = videoStream.parameters
        guard parameters.width > 0, parameters.height > 0 else {
            throw MediaError(.invalidInput, "\(path): the video stream has no picture size; the file is damaged")
        }
        let video = VideoStreamInfo(stream: videoStream)
        var audio: AudioStreamInfo?
        if let audioIndex = input.bestStream(AVMEDIA_TYPE_AUDIO) {
            let stream = input.stream(audioIndex)
            let audioParameters = stream.parameters
            audio = AudioStreamInfo(
                index: audioIndex,
                codecName: String(cString: avcodec_get_name(audioParameters.codec_id)),
                sampleRate: Int(audioParameters.sample_rate),
                channels: Int(audioParameters.ch_layout.nb_channels),
                timeBase: Rational(stream.timeBase)
            )
        }

        var packets: [VideoPacket] = []
        let packet = Packet()
        let noTimestamp = farm_nopts_value()
        var audioEnd: Int64?
        var audioClock = AudioTimestampCheck()
        while try input.read(into: packet) {
            defer { packet.unref() }
            if let audio, packet.streamIndex == audio.index {
                let start = packet.pts != noTimestamp ? packet.pts : packet.dts
                if start != noTimestamp {
                    audioEnd = max(audioEnd ?? .min, start &+ max(packet.duration, 0))
                    // Packets an edit list drops are never played: they are not on the clock.
                    if !packet.isDiscarded {
                        audioClock.add(
                            start: audio.timeBase.seconds(start),
                            duration: audio.timeBase.seconds(max(packet.duration, 0))
                        )
                    }
                }
                continue
            }
            guard packet.streamIndex == videoIndex else { continue }
            var pts = packet.pts
            var dts = packet.dts
            if pts == noTimestamp { pts = dts }
            if dts == noTimestamp { dts = pts }
            guard pts != noTimestamp else {
                throw MediaError(
                    .unsupportedInput,
                    "\(path): video packet \(packets.count) has no timestamp; remux the file into MP4 or Matroska first"
                )
            }
            packets.append(
                VideoPacket(
                    pts: pts,
                    dts: dts,
                    isKeyframe: packet.isKeyframe,
                    duration: packet.duration,
                    isDiscarded: packet.isDiscarded,
                    position: packet.position >= 0 ? packet.position : nil
                )
            )
        }
        guard !packets.isEmpty else {
            throw MediaError(.unsupportedInput, "\(path): the video stream has no frames")
        }
        // Containers with an index (MP4, MOV) list every frame up front: fewer frames read means the file ends
        // early, which is an incomplete upload rather than damaged data in the middle.
        let indexed = Int(avformat_index_get_entries_count(videoStream.pointer))
        if indexed > packets.count, input.formatName.contains("mp4") {
            throw MediaError(
                .invalidInput,
                "\(path): the file is truncated: its index lists \(indexed) video frames, only \(packets.count) are "
                    + "in the file; upload the complete file again"
            )
        }
        guard packets.contains(where: \.isKeyframe) else {
            throw MediaError(.invalidInput, "\(path): the video stream has no keyframe; the file is damaged")
        }
        let info = SourceInfo(
            path: path,
            formatName: input.formatName,
            video: video,
            audio: audio,
            packets: packets,
            audioEndSeconds: audio.flatMap { audio in audioEnd.map { audio.timeBase.seconds($0) } }
        )
        if audio != nil, let problem = audioClock.problem(videoEnd: info.videoEndSeconds) {
            throw MediaError(
                .invalidInput,
                "\(path): \(problem); the audio's clock is damaged and its sound cannot be placed in step with the "
                    + "video. Export the file again from its original, or submit it without audio "
                    + "(`ffmpeg -i SOURCE -c copy -an FIXED.mp4`)"
            )
        }
        return info
    }
}

extension Rational {
    package init(_ value: AVRational) { self.init(value.num, value.den) }
    package var av: AVRational { AVRational(num: self.num, den: self.den) }
}
