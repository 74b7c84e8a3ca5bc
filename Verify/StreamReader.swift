import CFFmpeg
import FarmFormats
import FarmMedia
import FarmProtocol

/// Demuxes and decodes one stream frame by frame, remembering every packet it read (time, byte position, key flag,
/// IDR-ness, and which input it came from). Used by `farm verify`; owns its libav objects through the classes of
/// LibavObjects.swift.
///
/// Reads either one file, or a sequence of inputs (an HLS rendition: init segment + segment k, one per segment) fed
/// to one decoder, as a player does. An input that cannot be opened or read is recorded in `inputErrors` and skipped;
/// reading goes on with the next one.
final class StreamReader {
    struct PacketRecord {
        var pts: Int64
        var duration: Int64
        /// Byte offset of the packet's data in its input (-1 when the demuxer does not say).
        var position: Int64
        var isKeyframe: Bool
        /// From the NAL unit types for H.264/HEVC; nil for other codecs.
        var isIDR: Bool?
        /// Index of the input the packet came from.
        var input: Int
    }

    let timeBase: Rational
    /// The stream's nominal frame rate (video), or 0/0 when unknown.
    let frameRate: Rational
    /// The clockwise turn that shows the stream's pictures upright (its display matrix), in degrees.
    let rotation: Int
    /// The deinterlacing and tone mapping the stream's signalling asks for (as the farm's plan reads it).
    let conversion: PictureConversion
    private(set) var packets: [PacketRecord] = []
    /// Inputs that could not be opened or read, with the reason; reading went on with the next input.
    private(set) var inputErrors: [(input: Int, message: String)] = []
    /// The last frame `next()` decoded; valid until the next call.
    let frame = Frame()

    private let type: AVMediaType
    private let decoder: CodecDecoder
    private let codecID: AVCodecID
    private let packet = Packet()
    private let nal: (codec: NALUnits.Codec, lengthSize: Int)?
    private let inputCount: Int
    private let openInput: (Int) throws -> Input?
    private var current: (input: InputFile, streamIndex: Int, index: Int, presentationStart: Int64?)?
    /// What the current input's packets lose from libavformat's presentation timestamps (see `Input`).
    private var presentationShift: Int64?
    private var nextInput: Int
    private var drained = false

    /// One input of a sequence.
    struct Input {
        var path: String
        /// When the input's first packet is shown, as its container's own boxes say (an fMP4 fragment's `tfdt`
        /// plus the first sample's composition offset); nil to take libavformat's timestamps as they are.
        ///
        /// libavformat reads a fragment whose B-frames have negative composition offsets (version 1 `trun`, as
        /// CMAF writes them, with no edit list, as the farm did before `TaskSpec.presentationDelay`) with every
        /// presentation time later by the largest of those offsets (its mov demuxer's `dts_shift`): two frames for
        /// x264's B-pyramid, more where frames are longer. A player
        /// that follows the boxes (a browser's) shows the first picture at `tfdt`. The reader takes the boxes' word:
        /// every packet of the input is moved by what its first packet is off by.
        var presentationStart: Int64?
    }

    /// One file; nil when it has no stream of `type`. Throws when it cannot be opened.
    convenience init?(path: String, type: AVMediaType) throws {
        let input = try InputFile(path: path)
        try self.init(first: input, index: 0, count: 1, presentationStart: nil, type: type) { _ in nil }
    }

    /// `count` inputs made on demand by `open` (nil: the input is missing, skip it). Nil when no input has a stream
    /// of `type`; `errors` then says why.
    static func sequence(
        count: Int,
        type: AVMediaType,
        open: @escaping (Int) throws -> Input?
    ) -> (reader: StreamReader?, errors: [(input: Int, message: String)]) {
        var errors: [(input: Int, message: String)] = []
        for index in 0..<count {
            do {
                guard let opened = try open(index) else { continue }
                let input = try InputFile(path: opened.path)
                guard
                    let reader = try StreamReader(
                        first: input,
                        index: index,
                        count: count,
                        presentationStart: opened.presentationStart,
                        type: type,
                        open: open
                    )
                else {
                    errors.append((index, "no \(Self.name(type)) stream"))
                    continue
                }
                reader.inputErrors = errors
                return (reader, [])
            } catch {
                errors.append((index, "\(error)"))
            }
        }
        return (nil, errors)
    }

    private init?(
        first input: InputFile,
        index: Int,
        count: Int,
        presentationStart: Int64?,
        type: AVMediaType,
        open: @escaping (Int) throws -> Input?
    ) throws {
        guard let streamIndex = input.bestStream(type) else { return nil }
        let stream = input.stream(streamIndex)
        self.type = type
        self.timeBase = Rational(stream.timeBase)
        self.frameRate = VideoStreamInfo.nominalFrameRate(of: stream)
        self.rotation = Rotation.clockwiseDegrees(of: stream)
        self.conversion = PictureConversion.of(stream: stream)
        self.decoder = try CodecDecoder(stream: stream, path: input.path)
        self.codecID = stream.codecID
        self.nal = Self.nalFormat(stream)
        self.inputCount = count
        self.openInput = open
        self.nextInput = index + 1
        self.select(input, streamIndex: streamIndex, index: index, presentationStart: presentationStart)
    }

    /// Decodes the next frame into `frame`; false at the end of the last input.
    func next() throws -> Bool {
        while true {
            if try self.decoder.receive(into: self.frame) { return true }
            if self.drained { return false }
            guard let current = self.current else {
                if !self.advance() {
                    try self.decoder.send(nil)
                    self.drained = true
                }
                continue
            }
            do {
                guard try current.input.read(into: self.packet) else {
                    self.current = nil
                    continue
                }
                defer { self.packet.unref() }
                guard self.packet.streamIndex == current.streamIndex else { continue }
                self.correctPresentation(of: self.packet, start: current.presentationStart)
                self.record(self.packet, input: current.index)
                try self.decoder.send(self.packet)
            } catch {
                // A damaged input: keep what it gave, go on with the next one.
                self.inputErrors.append((current.index, "\(error)"))
                self.current = nil
                if self.inputCount == 1 { throw error }
            }
        }
    }

    /// The stream's audio format as the decoder sees it (after the first frames, which set the profile).
    var audioFormat: VerificationChecks.AudioFormat {
        VerificationChecks.AudioFormat(
            codec: String(cString: avcodec_get_name(self.codecID)),
            profile: avcodec_profile_name(self.codecID, self.decoder.profile).map { String(cString: $0) },
            sampleRate: Int(self.decoder.sampleRate),
            channels: Int(self.decoder.channelLayout.nb_channels)
        )
    }

    /// The decoded frame's presentation timestamp in the stream's time base.
    var frameTimestamp: Int64? { self.frame.presentationTimestamp }

    func seconds(_ timestamp: Int64) -> Double { self.timeBase.seconds(timestamp) }

    /// Opens the next input that exists and has a matching stream; false when there is none left.
    private func advance() -> Bool {
        while self.nextInput < self.inputCount {
            let index = self.nextInput
            self.nextInput += 1
            do {
                guard let opened = try self.openInput(index) else { continue }
                let input = try InputFile(path: opened.path)
                guard let streamIndex = input.bestStream(self.type) else {
                    self.inputErrors.append((index, "no \(Self.name(self.type)) stream"))
                    continue
                }
                let stream = input.stream(streamIndex)
                guard stream.codecID == self.codecID, Rational(stream.timeBase) == self.timeBase else {
                    self.inputErrors.append((index, "another codec or time base than the first segment"))
                    continue
                }
                self.select(input, streamIndex: streamIndex, index: index, presentationStart: opened.presentationStart)
                return true
            } catch {
                self.inputErrors.append((index, "\(error)"))
            }
        }
        return false
    }

    private func select(_ input: InputFile, streamIndex: Int, index: Int, presentationStart: Int64?) {
        for other in 0..<input.streamCount where other != streamIndex {
            input.stream(other).discard = AVDISCARD_ALL
        }
        self.current = (input, streamIndex, index, presentationStart)
        self.presentationShift = nil
    }

    /// Moves the packet's presentation time by what the input's first packet is off from `start` (`Input`).
    private func correctPresentation(of packet: Packet, start: Int64?) {
        guard let start else { return }
        let noTimestamp = farm_nopts_value()
        guard packet.pts != noTimestamp else { return }
        let shift = self.presentationShift ?? (packet.pts - start)
        self.presentationShift = shift
        packet.pts -= shift
    }

    private static func nalFormat(_ stream: MediaStream) -> (codec: NALUnits.Codec, lengthSize: Int)? {
        let parameters = stream.parameters
        let codec: NALUnits.Codec? =
            switch parameters.codec_id {
            case AV_CODEC_ID_H264: .h264
            case AV_CODEC_ID_HEVC: .hevc
            default: nil
            }
        guard let codec, let extradata = parameters.extradata, parameters.extradata_size > 0 else { return nil }
        let configuration = [UInt8](UnsafeBufferPointer(start: extradata, count: Int(parameters.extradata_size)))
        return NALUnits.lengthSize(configuration: configuration, codec: codec).map { (codec, $0) }
    }

    private static func name(_ type: AVMediaType) -> String {
        type == AVMEDIA_TYPE_AUDIO ? "audio" : type == AVMEDIA_TYPE_VIDEO ? "video" : "media"
    }

    private func record(_ packet: Packet, input: Int) {
        let noTimestamp = farm_nopts_value()
        var isIDR: Bool?
        if let nal = self.nal, let payload = packet.payload {
            isIDR = NALUnits.isIDR([UInt8](payload), lengthSize: nal.lengthSize, codec: nal.codec)
        }
        self.packets.append(
            PacketRecord(
                pts: packet.pts != noTimestamp ? packet.pts : packet.dts,
                duration: packet.duration,
                position: packet.position,
                isKeyframe: packet.isKeyframe,
                isIDR: isIDR,
                input: input
            )
        )
    }
}

extension Frame {
    var isYUV420P8: Bool { self.pixelFormat == AV_PIX_FMT_YUV420P }

    /// Copies the planes of a yuv420p frame into Swift arrays (rows without padding); nil for another format.
    func yuvPicture() -> YUVPicture? {
        guard self.isYUV420P8, self.width > 0, self.height > 0 else { return nil }
        let chromaWidth = (self.width + 1) / 2
        let chromaHeight = (self.height + 1) / 2
        var planes: [Plane] = []
        for (index, (width, height)) in [
            (self.width, self.height), (chromaWidth, chromaHeight), (chromaWidth, chromaHeight),
        ].enumerated() {
            guard let data = farm_frame_data(self.pointer, Int32(index)) else { return nil }
            let stride = Int(farm_frame_linesize(self.pointer, Int32(index)))
            guard stride >= width else { return nil }
            var samples = [UInt8](repeating: 0, count: width * height)
            samples.withUnsafeMutableBufferPointer { destination in
                for row in 0..<height {
                    guard let target = destination.baseAddress?.advanced(by: row * width) else { return }
                    target.update(from: data.advanced(by: row * stride), count: width)
                }
            }
            planes.append(Plane(width: width, height: height, samples: samples))
        }
        return YUVPicture(y: planes[0], u: planes[1], v: planes[2])
    }
}
