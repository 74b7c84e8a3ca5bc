import CFFmpeg
import FarmProtocol

/// Demuxes and decodes one stream of a file frame by frame, remembering every packet it read (time, byte position,
/// key flag, IDR-ness). Used by `farm verify`; owns its libav objects through the classes of LibavObjects.swift.
final class StreamReader {
    struct PacketRecord {
        var pts: Int64
        var duration: Int64
        /// Byte offset of the packet's data in the file (-1 when the demuxer does not say).
        var position: Int64
        var isKeyframe: Bool
        /// From the NAL unit types for H.264/HEVC; nil for other codecs.
        var isIDR: Bool?
    }

    let path: String
    let timeBase: Rational
    let streamIndex: Int
    /// The stream's nominal frame rate (video), or 0/0 when unknown.
    let frameRate: Rational
    private(set) var packets: [PacketRecord] = []
    /// The last frame `next()` decoded; valid until the next call.
    let frame = Frame()

    private let input: InputFile
    private let decoder: Decoder
    private let packet = Packet()
    private let nal: (codec: NALUnits.Codec, lengthSize: Int)?
    private var drained = false

    /// Opens the best stream of `type`; nil when the file has none.
    init?(path: String, type: AVMediaType) throws {
        let input = try InputFile(path: path)
        guard let index = input.bestStream(type) else { return nil }
        for other in 0..<input.streamCount where other != index {
            input.stream(other).pointee.discard = AVDISCARD_ALL
        }
        let stream = input.stream(index)
        self.input = input
        self.path = path
        self.streamIndex = index
        self.timeBase = Rational(stream.pointee.time_base)
        var rate = stream.pointee.avg_frame_rate
        if rate.num <= 0 || rate.den <= 0 { rate = stream.pointee.r_frame_rate }
        self.frameRate = Rational(rate)
        self.decoder = try Decoder(stream: stream, path: path)
        var nal: (codec: NALUnits.Codec, lengthSize: Int)?
        if let parameters = stream.pointee.codecpar?.pointee {
            let codec: NALUnits.Codec? =
                switch parameters.codec_id {
                case AV_CODEC_ID_H264: .h264
                case AV_CODEC_ID_HEVC: .hevc
                default: nil
                }
            if let codec, let extradata = parameters.extradata, parameters.extradata_size > 0 {
                let configuration = [UInt8](
                    UnsafeBufferPointer(start: extradata, count: Int(parameters.extradata_size))
                )
                if let lengthSize = NALUnits.lengthSize(configuration: configuration, codec: codec) {
                    nal = (codec, lengthSize)
                }
            }
        }
        self.nal = nal
    }

    /// Decodes the next frame into `frame`; false at the end of the stream.
    func next() throws -> Bool {
        while true {
            if try self.decoder.receive(into: self.frame) { return true }
            if self.drained { return false }
            if try self.input.read(into: self.packet) {
                defer { self.packet.unref() }
                guard Int(self.packet.pointer.pointee.stream_index) == self.streamIndex else { continue }
                self.record(self.packet.pointer.pointee)
                try self.decoder.send(self.packet)
            } else {
                try self.decoder.send(nil)
                self.drained = true
            }
        }
    }

    /// The decoded frame's presentation timestamp in the stream's time base.
    var frameTimestamp: Int64? {
        let noTimestamp = farm_nopts_value()
        let best = self.frame.pointer.pointee.best_effort_timestamp
        if best != noTimestamp { return best }
        let pts = self.frame.pointer.pointee.pts
        return pts != noTimestamp ? pts : nil
    }

    func seconds(_ timestamp: Int64) -> Double { self.timeBase.seconds(timestamp) }

    private func record(_ packet: AVPacket) {
        let noTimestamp = farm_nopts_value()
        var isIDR: Bool?
        if let nal = self.nal, let data = packet.data, packet.size > 0 {
            let bytes = [UInt8](UnsafeBufferPointer(start: data, count: Int(packet.size)))
            isIDR = NALUnits.isIDR(bytes, lengthSize: nal.lengthSize, codec: nal.codec)
        }
        self.packets.append(
            PacketRecord(
                pts: packet.pts != noTimestamp ? packet.pts : packet.dts,
                duration: packet.duration,
                position: packet.pos,
                isKeyframe: packet.flags & AV_PKT_FLAG_KEY != 0,
                isIDR: isIDR
            )
        )
    }
}

extension Frame {
    var width: Int { Int(self.pointer.pointee.width) }
    var height: Int { Int(self.pointer.pointee.height) }
    var isYUV420P8: Bool { self.pointer.pointee.format == AV_PIX_FMT_YUV420P.rawValue }

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
