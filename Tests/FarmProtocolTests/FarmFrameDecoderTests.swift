import FarmProtocol
import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@Suite("FarmFrameDecoder")
struct FarmFrameDecoderTests {
    @Test("frames come out whole whether drip-fed byte by byte, one per read or many per read")
    func verifier() throws {
        let maximum = 1024
        let payloads: [[UInt8]] = [
            [0x2A],
            Array("hello, farm".utf8),
            ProtocolSamples.body,
            // Exactly at the limit: allowed.
            (0..<maximum).map { UInt8(truncatingIfNeeded: $0 &* 7) },
        ]
        var pairs: [(ByteBuffer, [ByteBuffer])] = payloads.map { (frame(of: $0), [ByteBuffer(bytes: $0)]) }
        // Two frames in one read produce two messages.
        var twoFrames = frame(of: payloads[0])
        twoFrames.writeImmutableBuffer(frame(of: payloads[1]))
        pairs.append((twoFrames, [ByteBuffer(bytes: payloads[0]), ByteBuffer(bytes: payloads[1])]))

        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            FarmFrameDecoder(maximumFrameLength: maximum)
        }
    }

    @Test("an oversized length is rejected as soon as its 4 bytes arrive, before any payload")
    func oversizedFrameRejectedEarly() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FarmFrameDecoder(maximumFrameLength: 1024)))
        var header = channel.allocator.buffer(capacity: 4)
        header.writeInteger(UInt32(1025))
        let firstHalf = header.getSlice(at: header.readerIndex, length: 2)!
        let secondHalf = header.getSlice(at: header.readerIndex + 2, length: 2)!

        // Half a length prefix is not enough to judge.
        try channel.writeInbound(firstHalf)
        let error = #expect(throws: FarmProtocolError.frameTooLarge(length: 1025, maximum: 1024)) {
            try channel.writeInbound(secondHalf)
        }
        #expect(error?.description.contains("1025") == true)
        #expect(error?.description.contains("limit of 1024 bytes") == true)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    @Test("the default limit rejects a 4 GiB length prefix")
    func defaultLimitRejectsHugeLength() {
        var decoder = FarmFrameDecoder()
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32.max)
        let expected = FarmProtocolError.frameTooLarge(
            length: Int(UInt32.max),
            maximum: farmDefaultMaximumFrameLength
        )
        #expect(throws: expected) {
            _ = try decoder.decode(buffer: &buffer)
        }
    }

    @Test("EOF in the middle of a frame is a truncatedFrame error")
    func truncatedAtEOF() throws {
        // Inside the length prefix.
        try expectTruncated(after: [0x00, 0x00], leftOver: 2)
        // Inside the payload.
        try expectTruncated(after: [0x00, 0x00, 0x00, 0x0A, 1, 2, 3], leftOver: 7)
        // A whole frame, then the start of the next.
        var bytes = Array(frame(of: [9, 9, 9]).readableBytesView)
        bytes += [0x00, 0x00, 0x01, 0x00, 0xAB]
        try expectTruncated(after: bytes, leftOver: 5, frames: 1)
    }

    @Test("EOF between frames is clean")
    func eofBetweenFrames() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FarmFrameDecoder()))
        try channel.writeInbound(frame(of: [1, 2, 3]))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(bytes: [1, 2, 3]))
        let leftOvers = try channel.finish()
        #expect(leftOvers.isClean)
    }

    private func expectTruncated(
        after bytes: [UInt8],
        leftOver: Int,
        frames: Int = 0,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(FarmFrameDecoder()))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        var decoded = 0
        while try channel.readInbound(as: ByteBuffer.self) != nil {
            decoded += 1
        }
        #expect(decoded == frames, sourceLocation: sourceLocation)
        #expect(throws: FarmProtocolError.truncatedFrame(bytes: leftOver), sourceLocation: sourceLocation) {
            _ = try channel.finish()
        }
    }
}

/// A frame as the wire carries it: 4-byte big-endian length, then the payload.
private func frame(of payload: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(payload.count))
    buffer.writeBytes(payload)
    return buffer
}
