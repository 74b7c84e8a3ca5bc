import FarmProtocol
import Foundation
import NIOCore
import NIOEmbedded
import Testing

@Suite("FarmMessageCodec")
struct FarmMessageCodecTests {
    @Test("the samples cover every message kind")
    func samplesCoverEveryKind() {
        let expected: Set<UInt8> = [1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]
        let covered = Set(ProtocolSamples.messages.map { $0.kind.rawValue })
        #expect(covered == expected)
    }

    @Test("a message survives encodeFrame, FarmFrameDecoder and decode unchanged", arguments: ProtocolSamples.messages)
    func roundTrip(_ message: FarmMessage) throws {
        var stream = try FarmMessageCodec.encodeFrame(message, allocator: ByteBufferAllocator())
        let encodedBytes = stream.readableBytes
        var decoder = FarmFrameDecoder()
        let frame = try decoder.decode(buffer: &stream)
        let payload = try #require(frame, "the frame decoder did not produce the frame encodeFrame wrote")
        #expect(stream.readableBytes == 0, "the frame decoder left bytes of the frame behind")
        #expect(payload.readableBytes == encodedBytes - 4)
        #expect(payload.getInteger(at: payload.readerIndex, as: UInt8.self) == message.kind.rawValue)

        let decoded = try FarmMessageCodec.decode(frame: payload)
        #expect(decoded == message)
    }

    @Test("every message survives the channel handlers, all frames arriving in one read")
    func roundTripThroughPipeline() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addFarmMessageHandlers(
            maximumFrameLength: farmDefaultMaximumFrameLength
        )
        var stream = channel.allocator.buffer(capacity: 256 * 1024)
        for message in ProtocolSamples.messages {
            try channel.writeOutbound(message)
            while var frame = try channel.readOutbound(as: ByteBuffer.self) {
                stream.writeBuffer(&frame)
            }
        }
        try channel.writeInbound(stream)
        var received: [FarmMessage] = []
        while let message = try channel.readInbound(as: FarmMessage.self) {
            received.append(message)
        }
        #expect(received == ProtocolSamples.messages)
        let leftOvers = try channel.finish()
        #expect(leftOvers.isClean)
    }

    @Test("sourceData is the kind, an empty header and the body bytes verbatim")
    func sourceDataFrameLayout() throws {
        let body = ProtocolSamples.body
        let frame = try FarmMessageCodec.encodeFrame(
            .sourceData(ByteBuffer(bytes: body)),
            allocator: ByteBufferAllocator()
        )

        var expected = ByteBuffer()
        expected.writeInteger(UInt32(1 + 4 + body.count))
        expected.writeInteger(FarmMessage.Kind.sourceData.rawValue)
        expected.writeInteger(UInt32(0))
        expected.writeBytes(body)
        #expect(Array(frame.readableBytesView) == Array(expected.readableBytesView))
    }

    @Test("segmentData is the kind, a JSON header, then the body bytes verbatim, never base64")
    func segmentDataFrameLayout() throws {
        let header = FarmMessage.SegmentData(taskID: 11, token: 5, path: "360p/segment_00006.m4s", offset: 65_536)
        let body = ProtocolSamples.body
        let frame = try FarmMessageCodec.encodeFrame(
            .segmentData(header, ByteBuffer(bytes: body)),
            allocator: ByteBufferAllocator()
        )
        let bytes = Array(frame.readableBytesView)

        var reader = frame
        let frameLength = reader.readInteger(as: UInt32.self)
        let kind = reader.readInteger(as: UInt8.self)
        let rawHeaderLength = reader.readInteger(as: UInt32.self)
        let headerLength = try Int(#require(rawHeaderLength))
        let rawHeaderBytes = reader.readBytes(length: headerLength)
        let headerBytes = try #require(rawHeaderBytes, "the header length runs past the end of the frame")
        #expect(frameLength == UInt32(bytes.count - 4))
        #expect(kind == FarmMessage.Kind.segmentData.rawValue)
        #expect(try JSONDecoder().decode(FarmMessage.SegmentData.self, from: Data(headerBytes)) == header)

        #expect(Array(reader.readableBytesView) == body, "what follows the header must be the raw body")
        #expect(bytes.count == 4 + 1 + 4 + headerLength + body.count)
        let base64 = Array(Data(body).base64EncodedString().utf8)
        #expect(!bytes.containsRun(base64))
    }

    // MARK: Garbage

    @Test("an empty frame is malformed")
    func emptyFrame() {
        expectMalformed([])
    }

    @Test("an unknown kind byte is malformed, and the message names it", arguments: [0, 6, 9, 23, 200, 255] as [UInt8])
    func unknownKind(_ kind: UInt8) {
        let what = expectMalformed(framePayload(kind: kind, header: Array("{}".utf8)))
        #expect(what?.contains("\(kind)") == true)
    }

    @Test("a header length longer than the frame is malformed", arguments: [15, 100, UInt32.max] as [UInt32])
    func headerLengthPastEndOfFrame(_ headerLength: UInt32) {
        let header = Array(#"{"nonce":"ab"}"#.utf8)
        #expect(header.count == 14)
        let kind = FarmMessage.Kind.challenge.rawValue
        expectMalformed(framePayload(kind: kind, headerLength: headerLength, header: header))
        expectMalformed(framePayload(kind: kind, headerLength: headerLength, header: []))
    }

    @Test("a frame cut inside the header length is malformed")
    func truncatedHeaderLength() {
        expectMalformed([FarmMessage.Kind.hello.rawValue, 0, 0])
    }

    @Test(
        "a header that is not valid JSON for the kind is malformed",
        arguments: [FarmMessage.Kind.hello, .lease, .segmentData, .taskComplete],
        [
            "not json",
            "",
            "[]",
            #"{"agentName": 5}"#,
            #"{"protocolVersion":1,"agentName":"a""#,
            "\u{FF}\u{FE}",
        ]
    )
    func invalidJSONHeader(_ kind: FarmMessage.Kind, _ header: String) {
        expectMalformed(framePayload(kind: kind.rawValue, header: Array(header.utf8), body: [1, 2, 3]))
    }

    @Test("a valid header for another kind is malformed")
    func headerOfAnotherKind() throws {
        let frame = try FarmMessageCodec.encodeFrame(
            .hello(FarmMessage.Hello(agentName: "a")),
            allocator: ByteBufferAllocator()
        )
        var bytes = Array(frame.readableBytesView.dropFirst(4))
        #expect(bytes.first == FarmMessage.Kind.hello.rawValue)
        bytes[0] = FarmMessage.Kind.lease.rawValue
        expectMalformed(bytes)
    }
}

/// A frame payload: kind byte, header length (the header's own length unless given), header, body.
private func framePayload(kind: UInt8, headerLength: UInt32? = nil, header: [UInt8], body: [UInt8] = []) -> [UInt8] {
    var buffer = ByteBuffer()
    buffer.writeInteger(kind)
    buffer.writeInteger(headerLength ?? UInt32(header.count))
    buffer.writeBytes(header)
    buffer.writeBytes(body)
    return Array(buffer.readableBytesView)
}

/// Expects decoding `bytes` to throw `FarmProtocolError` with code `.malformed`, and returns what it says was wrong.
@discardableResult
private func expectMalformed(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    let error = #expect(throws: FarmProtocolError.self, sourceLocation: sourceLocation) {
        _ = try FarmMessageCodec.decode(frame: ByteBuffer(bytes: bytes))
    }
    guard let error else { return nil }
    guard case .malformed(let what) = error.code else {
        Issue.record("expected FarmProtocolError.malformed, got \(error.code)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(error.description.contains(what), sourceLocation: sourceLocation)
    return what
}
