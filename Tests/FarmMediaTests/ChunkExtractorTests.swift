import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@Suite("Chunk extraction, real libav")
struct ChunkExtractorTests {
    /// Sources whose packets a seek could get wrong: reordered frames, open GOPs, an edit list, containers that seek
    /// by decode time (MP4), presentation time (Matroska) or by searching the bytes (MPEG-TS, no index).
    static let sources: [(name: String, arguments: [String], remux: [String]?)] = [
        ("no-b-frames.mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "25"], nil),
        ("open-gop.mp4", openGOP, nil),
        ("open-gop.ts", openGOP + ["-f", "mpegts"], nil),
        ("open-gop.mkv", openGOP, nil),
        ("mpeg2.ts", ["-c:v", "mpeg2video", "-g", "12", "-bf", "2"], nil),
        // Stream copy from 1.3 s keeps the frames back to the keyframe before it, hidden by an edit list.
        ("edit-list.mp4", openGOP, ["-ss", "1.3"]),
    ]

    static let openGOP = [
        "-c:v", "libx264", "-preset", "ultrafast",
        "-x264-params", "open-gop=1:keyint=25:min-keyint=25:bframes=3:b-pyramid=normal",
    ]

    /// Every chunk of a plan, the last included, cut after a seek holds the very packets (timestamps, flags, bytes,
    /// order) that counting from the start of the file gives, and the seek is what was used.
    @Test(arguments: Self.sources.map(\.name))
    func aSoughtChunkHasThePacketsOfOneReadFromTheStart(name: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.make(name, in: directory)
        let info = try SourceProbe.probe(path: source)
        #expect(info.packets.allSatisfy { $0.position != nil })
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(segmentDuration: 1, minimumChunks: 5)
        )
        #expect(plan.chunks.count >= 5)
        // NUT refuses negative times (an edit list's hidden pre-roll): moved as the coordinator moves them.
        let earliest = min(0, plan.originPTS, plan.chunks.map(\.prerollPTS).min() ?? 0)
        let shift = TimestampShift(units: -earliest, timeBase: info.video.timeBase)
        for chunk in plan.chunks {
            let sought = directory.file("sought-\(chunk.index).nut")
            let read = directory.file("read-\(chunk.index).nut")
            let start = try ChunkExtractor.extractVideo(
                source: source,
                streamIndex: info.video.index,
                firstPacket: chunk.firstPacket,
                lastPacket: chunk.lastPacket,
                firstPacketIdentity: info.packets[chunk.firstPacket].identity,
                shift: shift,
                output: sought
            )
            #expect(start == (chunk.firstPacket == 0 ? .fromStart : .sought), "chunk \(chunk.index)")
            // Without the identity (tasks planned before it was recorded) the extractor reads from the start.
            let fromStart = try ChunkExtractor.extractVideo(
                source: source,
                streamIndex: info.video.index,
                firstPacket: chunk.firstPacket,
                lastPacket: chunk.lastPacket,
                shift: shift,
                output: read
            )
            #expect(fromStart == .fromStart)
            let expected = try Self.packets(of: read)
            #expect(!expected.isEmpty)
            #expect(try Self.packets(of: sought) == expected, "chunk \(chunk.index) of \(plan.chunks.count)")
            #expect(FileManager.default.contentsEqual(atPath: sought, andPath: read), "chunk \(chunk.index)")
        }
    }

    /// An identity that names no packet (the file changed, or the demuxer times packets differently after a
    /// seek) is never trusted: the chunk is read from the start, with the reason.
    @Test func aFirstPacketNeverMetFallsBackToReadingFromTheStart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.make("open-gop.mp4", in: directory)
        let info = try SourceProbe.probe(path: source)
        let first = info.packets.indices.last { info.packets[$0].isKeyframe }!
        var identity = info.packets[first].identity
        identity.position = identity.position.map { $0 + 1 }
        let sought = directory.file("sought.nut")
        let start = try ChunkExtractor.extractVideo(
            source: source,
            streamIndex: info.video.index,
            firstPacket: first,
            lastPacket: info.packets.count - 1,
            firstPacketIdentity: identity,
            output: sought
        )
        guard case .fellBack(let reason) = start else {
            Issue.record("expected a fallback, got \(start)")
            return
        }
        #expect(reason.contains("without meeting"), "\(reason)")
        let read = directory.file("read.nut")
        try ChunkExtractor.extractVideo(
            source: source,
            streamIndex: info.video.index,
            firstPacket: first,
            lastPacket: info.packets.count - 1,
            output: read
        )
        #expect(try Self.packets(of: sought) == Self.packets(of: read))
    }

    /// A 9 s 320x240 pattern with a tone, encoded with the source's arguments, remuxed with stream copy when asked.
    static func make(_ name: String, in directory: TemporaryDirectory) throws -> String {
        let entry = Self.sources.first { $0.name == name }!
        let path = directory.file(name)
        let encoded = entry.remux == nil ? path : directory.file("encoded-" + name)
        try run(
            "ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=9",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=9",
                "-pix_fmt", "yuv420p", "-c:a", "aac",
            ] + entry.arguments + [encoded]
        )
        if let remux = entry.remux {
            try run(
                "ffmpeg",
                ["-hide_banner", "-loglevel", "error", "-y"] + remux + ["-i", encoded, "-c", "copy", path]
            )
        }
        return path
    }

    struct CopiedPacket: Equatable, CustomStringConvertible {
        var pts: Int64
        var dts: Int64
        var flags: Int32
        var sha256: String

        var description: String { "pts \(self.pts) dts \(self.dts) flags \(self.flags) \(self.sha256.prefix(8))" }
    }

    static func packets(of path: String) throws -> [CopiedPacket] {
        let input = try InputFile(path: path)
        let packet = Packet()
        var packets: [CopiedPacket] = []
        while try input.read(into: packet) {
            defer { packet.unref() }
            var hasher = SHA256Stream()
            if let payload = packet.payload { hasher.update(payload) }
            packets.append(
                CopiedPacket(
                    pts: packet.pts,
                    dts: packet.dts,
                    flags: packet.flags,
                    sha256: hasher.finalize()
                )
            )
        }
        return packets
    }
}
