import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmTestSupport
import FarmVerify
import Foundation
import Testing

/// `farm verify` as a user runs it, and on what the farm itself produces.
@Suite("farm verify")
struct VerifyCommandTests {
    @Test func exitsZeroOnAFaithfulOutputAndOneOnADamagedOne() throws {
        let directory = try TemporaryDirectory("farm-verify")
        defer { directory.remove() }
        let source = try HLSFixture.makeSource(directory)
        let output = directory.file("hls")
        try HLSFixture.makeOutput(source: source, at: output)

        let printed = try run(FarmBinary.path, ["verify", source, output, "--min-psnr", "30"])
        #expect(printed.contains("PASSED: every check holds"), "\(printed)")
        #expect(printed.contains("240p    320x240    100"), "\(printed)")

        try FileManager.default.removeItem(atPath: output + "/120p/segment_00003.m4s")
        #expect {
            try run(FarmBinary.path, ["verify", source, output, "--no-quality"])
        } throws: { error in
            (error as? CommandFailed)?.status == 1
        }
        #expect {
            try run(FarmBinary.path, ["verify", source, directory.file("nowhere")])
        } throws: { error in
            guard let failed = error as? CommandFailed else { return false }
            return failed.status == 64 && failed.standardError.contains("is not a folder")
        }
    }

    /// The farm's own output (chunks encoded by separate agents, stitched) must pass every check.
    @Test(
        .requiresPostgreSQL,
        .farmTimeLimit
    )
    func theFarmsOutputPasses() async throws {
        let directory = try TemporaryDirectory("farm-verify-e2e")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 8, width: 640, height: 360, gop: 50)
        let output = directory.file("hls")
        let status = try await InProcessFarm.transcode(source, into: output)
        try #require(status.state == .ready, "\(status.error ?? "")")
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(minimumPSNR: 35))
        #expect(report.failures == [], "\(report.text)")
        #expect(report.rungs.map(\.name) == ["360p", "240p"])
        #expect(report.rungs.allSatisfy { $0.frames == 200 && $0.segments == 4 })
        #expect(report.rungs.allSatisfy { abs(($0.measuredFrameRate ?? 0) - 25) < 0.01 })

        // Every I-frame entry, cut out of its segment and put after the init segment, is one keyframe a player
        // decodes alone, at the time the playlist gives it.
        let master = try HLSMasterPlaylist(parsing: String(contentsOfFile: output + "/master.m3u8", encoding: .utf8))
        #expect(master.iFrameStreams.compactMap(\.uri) == ["360p/iframes.m3u8", "240p/iframes.m3u8"])
        for rung in ["360p", "240p"] {
            let iFrames = try Self.expectEveryIFrameDecodesAlone(folder: output + "/" + rung, scratch: directory)
            #expect(iFrames.mapURI == "init.mp4")
        }
    }

    /// Each entry of `folder/iframes.m3u8`, cut out of its segment (after the init segment, if any), is one keyframe
    /// a player decodes alone, at the time the playlist gives it; there is one per segment.
    @discardableResult
    static func expectEveryIFrameDecodesAlone(folder: String, scratch: TemporaryDirectory) throws -> HLSMediaPlaylist {
        let iFrames = try HLSMediaPlaylist(
            parsing:
                String(contentsOfFile: folder + "/iframes.m3u8", encoding: .utf8)
        )
        let media = try HLSMediaPlaylist(parsing: String(contentsOfFile: folder + "/playlist.m3u8", encoding: .utf8))
        #expect(iFrames.iFramesOnly && (iFrames.version ?? 0) >= 4)
        #expect(iFrames.segments.map(\.uri) == media.segments.map(\.uri))
        let initData = try iFrames.mapURI.map { try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0)) }
        var start = 0.0
        var firstTime: Double?
        for entry in iFrames.segments {
            let range = try #require(entry.byteRange)
            let segment = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + entry.uri))
            #expect(range.lowerBound == 0 && range.count < segment.count, "one frame, not the whole segment")
            let alone = scratch.file("iframe-" + entry.uri)
            try ((initData ?? Data()) + segment[range]).write(to: URL(fileURLWithPath: alone))
            #expect(try Probe.videoFrameCount(alone) == 1, "\(folder)/\(entry.uri)")
            let keyframes = try Probe.keyframeTimes(alone)
            #expect(keyframes.count == 1, "\(keyframes)")
            // An fMP4 keyframe's time as its boxes give it, which libavformat and browsers both show; counted from the
            // first one, as a player's timeline is (a B-frame job's pictures all show its presentation delay late).
            let time =
                try initData.map { initData in
                    let timing = try MP4Boxes.timing(ofFragment: [UInt8](segment[range]))
                    let timescale = try #require(MP4Boxes.timescale(initSegment: [UInt8](initData)))
                    let boxes = Double(timing.baseDecodeTime + timing.leadingCompositionOffset) / Double(timescale)
                    #expect(abs(boxes - (keyframes.first ?? -1)) < 0.001, "libavformat reads \(entry.uri) as the boxes")
                    return boxes
                } ?? keyframes.first ?? -1
            let origin = firstTime ?? time
            firstTime = origin
            #expect(
                abs(time - origin - start) < 0.001,
                "\(entry.uri): keyframe at \(time - origin) from the first, the playlist says \(start)"
            )
            start += entry.duration
        }
        return iFrames
    }

    /// `farm transcode --container ts`: MPEG-TS segments that start alone (no init segment), the same checks
    /// passing, and I-frame entries that hold the PAT, the PMT and one whole keyframe.
    @Test(.requiresPostgreSQL, .farmTimeLimit)
    func transportStreamOutputPasses() async throws {
        let directory = try TemporaryDirectory("farm-verify-ts")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 6, width: 640, height: 360, gop: 50)
        let output = directory.file("hls")
        try await FarmBinary.transcode(
            source,
            into: output,
            options: ["--container", "ts", "--segment-duration", "2", "--minimum-chunks", "2", "--rungs", "240p"]
        )
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(minimumPSNR: 35))
        #expect(report.failures == [], "\(report.text)")
        #expect(report.rungs.map(\.name) == ["240p"])
        #expect(report.rungs.allSatisfy { $0.frames == 150 && $0.segments == 3 })

        for folder in ["240p", "audio"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: output + "/" + folder)
            #expect(files.filter { $0.hasSuffix(".ts") }.count == 3, "\(folder): \(files)")
            #expect(!files.contains { $0.hasSuffix(".m4s") }, "\(folder): the fMP4 segments are gone")
            let playlist = try String(contentsOfFile: output + "/" + folder + "/playlist.m3u8", encoding: .utf8)
            #expect(!playlist.contains("EXT-X-MAP") && playlist.contains("#EXT-X-VERSION:3"))
        }
        let iFrames = try Self.expectEveryIFrameDecodesAlone(folder: output + "/240p", scratch: directory)
        #expect(iFrames.mapURI == nil)
        #expect(iFrames.segments.allSatisfy { ($0.byteRange?.count ?? 1) % 188 == 0 }, "whole TS packets")
    }

    @Test func anUnknownContainerIsRefusedWithTheChoices() throws {
        #expect {
            try run(FarmBinary.path, ["transcode", "in.mp4", "-o", "out", "--container", "mkv"])
        } throws: { error in
            guard let failed = error as? CommandFailed else { return false }
            return failed.status == 64 && failed.standardError.contains("fmp4") && failed.standardError.contains("ts")
        }
    }
}
