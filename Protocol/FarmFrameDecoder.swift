import Foundation
import NIOCore

/// The largest frame either side accepts unless configured otherwise (`--max-frame-bytes`): the one name of the
/// default frame limit.
public let farmDefaultMaximumFrameLength = 16 * 1024 * 1024

extension FarmMessage {
    /// Room left in a data frame for everything but the body: the kind byte, the 4-byte header length and the JSON
    /// header. A `sourceData` header is empty; a `segmentData` one names the task, token, path and offset, well under
    /// 4 KiB, so one allowance serves both.
    package static let dataFrameHeaderAllowance = 4096

    /// How many body bytes one `sourceData` or `segmentData` frame carries, on both sides: 1 MiB, less when the frame
    /// limit leaves no room for that and `dataFrameHeaderAllowance`, and never under 1 KiB.
    package static func dataPieceSize(maximumFrameLength: Int) -> Int {
        max(1024, min(1 << 20, maximumFrameLength - Self.dataFrameHeaderAllowance))
    }
}

/// Splits the byte stream into frames: a 4-byte big-endian length, then that many bytes of payload.
///
/// The length is checked against `maximumFrameLength` before a single payload byte is buffered, so a peer cannot make
/// us allocate more than the limit, and a frame over it closes the connection with `FarmProtocolError.frameTooLarge`.
package struct FarmFrameDecoder: NIOSingleStepByteToMessageDecoder {
    package typealias InboundOut = ByteBuffer

    package let maximumFrameLength: Int

    package init(maximumFrameLength: Int = farmDefaultMaximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    package mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            return nil
        }
        guard length <= self.maximumFrameLength else {
            throw FarmProtocolError.frameTooLarge(length: Int(length), maximum: self.maximumFrameLength)
        }
        guard buffer.readableBytes >= 4 + Int(length) else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }

    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let frame = try self.decode(buffer: &buffer) {
            return frame
        }
        if seenEOF, buffer.readableBytes > 0 {
            throw FarmProtocolError.truncatedFrame(bytes: buffer.readableBytes)
        }
        return nil
    }
}

/// Turns frames into `FarmMessage`s and back. Stateless, so one instance serves both directions.
package enum FarmMessageCodec {
    /// Encodes a message as one complete frame, length prefix included.
    package static func encodeFrame(_ message: FarmMessage, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        try buffer.writeLengthPrefixed(as: UInt32.self) { buffer in
            let start = buffer.writerIndex
            try self.encodePayload(message, into: &buffer)
            return buffer.writerIndex - start
        }
        return buffer
    }

    package static func encodePayload(_ message: FarmMessage, into buffer: inout ByteBuffer) throws {
        let header: Data
        switch message {
        case .hello(let value): header = try self.json(value)
        case .challenge(let value): header = try self.json(value)
        case .authenticate(let value): header = try self.json(value)
        case .welcome(let value): header = try self.json(value)
        case .refused(let value): header = try self.json(value)
        case .lease(let value): header = try self.json(value)
        case .sourceEnd(let value): header = try self.json(value)
        case .heartbeat(let value): header = try self.json(value)
        case .heartbeatAck(let value): header = try self.json(value)
        case .segmentData(let value, _): header = try self.json(value)
        case .taskComplete(let value): header = try self.json(value)
        case .taskFailed(let value): header = try self.json(value)
        case .resultAccepted(let value): header = try self.json(value)
        case .resultRejected(let value): header = try self.json(value)
        case .revoke(let value): header = try self.json(value)
        case .leaseRequest, .drain, .sourceData: header = Data()
        }
        buffer.writeInteger(message.kind.rawValue)
        buffer.writeInteger(UInt32(header.count))
        buffer.writeBytes(header)
        switch message {
        case .sourceData(var body), .segmentData(_, var body):
            buffer.writeBuffer(&body)
        default:
            break
        }
    }

    private static func json(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(value)
    }

    /// Decodes one frame's payload. Any malformation is a `FarmProtocolError` naming what was wrong.
    package static func decode(frame: ByteBuffer) throws -> FarmMessage {
        var frame = frame
        guard let rawKind = frame.readInteger(as: UInt8.self) else {
            throw FarmProtocolError.malformed("empty frame")
        }
        guard let kind = FarmMessage.Kind(rawValue: rawKind) else {
            throw FarmProtocolError.malformed("unknown message kind \(rawKind)")
        }
        guard let headerLength = frame.readInteger(as: UInt32.self),
            let header = frame.readSlice(length: Int(headerLength))
        else {
            throw FarmProtocolError.malformed("\(kind) frame is shorter than its header length")
        }
        func json<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: Data(header.readableBytesView))
            } catch let error as FarmProtocolError {
                throw error
            } catch {
                throw FarmProtocolError.malformed("\(kind) header is not valid JSON for this message: \(error)")
            }
        }
        switch kind {
        case .hello: return .hello(try json(FarmMessage.Hello.self))
        case .challenge: return .challenge(try json(FarmMessage.Challenge.self))
        case .authenticate: return .authenticate(try json(FarmMessage.Authenticate.self))
        case .welcome: return .welcome(try json(FarmMessage.Welcome.self))
        case .refused: return .refused(try json(FarmMessage.Refused.self))
        case .leaseRequest: return .leaseRequest
        case .lease: return .lease(try json(FarmMessage.Lease.self))
        case .sourceData: return .sourceData(frame)
        case .sourceEnd: return .sourceEnd(try json(FarmMessage.SourceEnd.self))
        case .heartbeat: return .heartbeat(try json(FarmMessage.Heartbeat.self))
        case .heartbeatAck: return .heartbeatAck(try json(FarmMessage.HeartbeatAck.self))
        case .segmentData: return .segmentData(try json(FarmMessage.SegmentData.self), frame)
        case .taskComplete: return .taskComplete(try json(FarmMessage.TaskComplete.self))
        case .taskFailed: return .taskFailed(try json(FarmMessage.TaskFailed.self))
        case .resultAccepted: return .resultAccepted(try json(FarmMessage.ResultVerdict.self))
        case .resultRejected: return .resultRejected(try json(FarmMessage.ResultVerdict.self))
        case .revoke: return .revoke(try json(FarmMessage.Revoke.self))
        case .drain: return .drain
        }
    }
}

/// Decodes frames into messages in one channel handler, so the async side only sees `FarmMessage`s.
package final class FarmMessageDecoderHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = FarmMessage

    package init() {}

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        do {
            context.fireChannelRead(Self.wrapInboundOut(try FarmMessageCodec.decode(frame: frame)))
        } catch {
            context.fireErrorCaught(error)
        }
    }
}

/// Encodes outbound messages as frames.
package final class FarmMessageEncoderHandler: ChannelOutboundHandler {
    package typealias OutboundIn = FarmMessage
    package typealias OutboundOut = ByteBuffer

    package init() {}

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        do {
            let frame = try FarmMessageCodec.encodeFrame(
                Self.unwrapOutboundIn(data),
                allocator: context.channel.allocator
            )
            context.write(Self.wrapOutboundOut(frame), promise: promise)
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
        }
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds framing and message coding: after this the channel reads and writes `FarmMessage`.
    package func addFarmMessageHandlers(maximumFrameLength: Int) throws {
        try self.addHandler(ByteToMessageHandler(FarmFrameDecoder(maximumFrameLength: maximumFrameLength)))
        try self.addHandler(FarmMessageDecoderHandler())
        try self.addHandler(FarmMessageEncoderHandler())
    }
}
