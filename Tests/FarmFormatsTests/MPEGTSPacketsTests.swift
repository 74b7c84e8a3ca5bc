import FarmFormats
import Testing

@Suite("MPEG-TS packets")
struct MPEGTSPacketsTests {
    /// One 188-byte packet: sync byte, PID, payload-unit-start flag, optional adaptation field (with the random
    /// access indicator), payload padded with 0xFF.
    static func packet(pid: Int, unitStart: Bool, randomAccess: Bool? = nil, payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x47, UInt8(pid >> 8) | (unitStart ? 0x40 : 0), UInt8(pid & 0xFF)]
        if let randomAccess {
            bytes += [0x30, 1, randomAccess ? 0x40 : 0]
        } else {
            bytes += [0x10]
        }
        bytes += payload
        return bytes + [UInt8](repeating: 0xFF, count: 188 - bytes.count)
    }

    static let pat = packet(pid: 0, unitStart: true, payload: [0x00, 0x00, 0xB0, 0x0D])
    static let pmt = packet(pid: 0x1000, unitStart: true, payload: [0x00, 0x02, 0xB0, 0x12])
    static func pes(randomAccess: Bool) -> [UInt8] {
        packet(pid: 0x100, unitStart: true, randomAccess: randomAccess, payload: [0x00, 0x00, 0x01, 0xE0])
    }
    static let continuation = packet(pid: 0x100, unitStart: false, payload: [0xAB])

    @Test("leading PES: PAT, PMT and every packet of the first PES, up to the next PES of that stream")
    func leadingPES() throws {
        let stream =
            Self.pat + Self.pmt + Self.pes(randomAccess: true) + Self.continuation + Self.continuation
            + Self.pes(randomAccess: false) + Self.continuation
        #expect(try MPEGTSPackets.leadingPES(stream) == .init(end: 5 * 188, isRandomAccess: true))
        // A PES the muxer did not flag as a random access point is no keyframe.
        let delta = Self.pat + Self.pmt + Self.pes(randomAccess: false) + Self.continuation
        #expect(try MPEGTSPackets.leadingPES(delta) == .init(end: 4 * 188, isRandomAccess: false))
    }

    @Test("bytes that lose the sync byte, or hold no PES, are refused")
    func damaged() {
        let stream = Self.pat + Self.pes(randomAccess: true)
        #expect(throws: MediaError.self) { try MPEGTSPackets.leadingPES(Array(stream.dropFirst(4))) }
        #expect(throws: MediaError.self) { try MPEGTSPackets.leadingPES(Self.pat + Self.pmt) }
    }
}
