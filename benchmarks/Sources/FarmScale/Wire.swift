import Crypto
import FarmProtocol
import Foundation
import NIOCore

// The agent protocol as docs/PROTOCOL.md writes it down, implemented again here: the farm's own message types are
// `package` to the farm, so a separate package (this one) sees only the document, as an outside agent would. That
// the simulated agents are accepted is then also a check that the document is enough to write an agent from.

/// Message kinds (docs/PROTOCOL.md, the table under "Framing").
enum Kind: UInt8 {
    case hello = 1
    case challenge, authenticate, welcome, refused
    case leaseRequest = 10
    case lease, sourceData, sourceEnd, heartbeat, heartbeatAck, segmentData, taskComplete
    case taskFailed, resultAccepted, resultRejected, revoke, drain
}

struct Frame {
    var kind: Kind
    var header: ByteBuffer
    var body: ByteBuffer

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(self.header.readableBytesView))
    }
}

struct WireError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Splits the byte stream into frames and each frame into kind, header and body.
struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = Frame
    let maximumFrameLength = 16 * 1024 * 1024

    mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= self.maximumFrameLength else { throw WireError("frame of \(length) bytes is over the limit") }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        var payload = buffer.readSlice(length: Int(length))!
        guard let raw = payload.readInteger(as: UInt8.self), let kind = Kind(rawValue: raw),
            let headerLength = payload.readInteger(as: UInt32.self),
            let header = payload.readSlice(length: Int(headerLength))
        else { throw WireError("malformed frame") }
        return Frame(kind: kind, header: header, body: payload)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try self.decode(buffer: &buffer)
    }
}

/// Writes one frame: length, kind, header length, JSON header, raw body.
func encodeFrame(
    _ kind: Kind,
    _ header: some Encodable,
    body: ByteBuffer? = nil,
    allocator: ByteBufferAllocator
)
    throws -> ByteBuffer
{
    let json = try JSONEncoder().encode(header)
    return encodeFrame(kind, json: json, body: body, allocator: allocator)
}

func encodeFrame(_ kind: Kind, json: Data, body: ByteBuffer? = nil, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 9 + json.count + (body?.readableBytes ?? 0))
    buffer.writeInteger(UInt32(1 + 4 + json.count + (body?.readableBytes ?? 0)))
    buffer.writeInteger(kind.rawValue)
    buffer.writeInteger(UInt32(json.count))
    buffer.writeBytes(json)
    if var body { buffer.writeBuffer(&body) }
    return buffer
}

// Headers (docs/PROTOCOL.md).
/// `protocolVersion`: farmProtocolVersion in Protocol/FarmMessage.swift (the coordinator refuses another).
struct Hello: Codable { var protocolVersion = 2, agentName: String }
struct Challenge: Codable { var nonce: String }
struct Capabilities: Codable { var encoders: [String], vaapiDevice: String?, slots: Int }
struct Authenticate: Codable { var proof: String, capabilities: Capabilities }
struct Welcome: Codable { var agentID: Int64, heartbeatIntervalSeconds: Double }
struct Refused: Codable { var reason: String }
struct Lease: Codable { var taskID: Int64, token: Int64, leaseSeconds: Double, spec: TaskSpec, sourceBytes: Int64 }
struct SourceEnd: Codable { var taskID: Int64, sha256: String }
struct Heartbeat: Codable { var taskID: Int64, token: Int64, progress: Double }
struct SegmentData: Codable { var taskID: Int64, token: Int64, path: String, offset: Int64 }
struct TaskComplete: Codable { var taskID: Int64, token: Int64, outputs: [Output] }
struct Verdict: Codable { var taskID: Int64, token: Int64, reason: String? }
struct Empty: Codable {}

/// One output file as `taskComplete` lists it.
struct Output: Codable, Sendable {
    var rendition: String
    var role: String
    var segmentIndex: Int?
    var path: String
    var bytes: Int64
    var sha256: String
    var startPTS: Int64
    var duration: Int64
    var frames: Int
    var timeBase: Rational
}

/// `hex(HMAC-SHA256(secret, "farm-agent-v1\n" + nonce + "\n" + agentName))`.
func proof(secret: String, nonce: String, agentName: String) -> String {
    let code = HMAC<SHA256>.authenticationCode(
        for: Data("farm-agent-v1\n\(nonce)\n\(agentName)".utf8),
        using: SymmetricKey(data: Data(secret.utf8))
    )
    return code.map { String(format: "%02x", $0) }.joined()
}
