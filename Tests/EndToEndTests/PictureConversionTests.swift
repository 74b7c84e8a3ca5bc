import FarmTestSupport
import Foundation
import Testing

/// Interlaced and full-range sources through `farm transcode` (coordinator, two agents, a real PostgreSQL), checked
/// by ffmpeg's own filters and ffprobe: web rungs are progressive, limited range, and say so.
@Suite(
    "Picture conversion",
    .serialized,
    .enabled(if: TestDatabase.isAvailable, "needs PostgreSQL: run make test, or set FARM_TEST_DATABASE_URL")
)
struct PictureConversionTests {
    /// ffmpeg's `idet` verdict over a file or playlist: frames it calls top-field-first, bottom-field-first and
    /// progressive (multi-frame detection).
    static func fieldVerdict(_ path: String) throws -> (tff: Int, bff: Int, progressive: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-hide_banner", "-nostats", "-i", path, "-vf", "idet", "-f", "null", "-"]
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("idet-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        let text = try String(contentsOf: log, encoding: .utf8)
        guard let line = text.split(separator: "\n").last(where: { $0.contains("Multi frame detection") }) else {
            throw CommandFailed(command: "ffmpeg idet \(path)", status: process.terminationStatus, standardError: text)
        }
        func count(_ label: String) -> Int {
            let after = line.components(separatedBy: "\(label):").dropFirst().first ?? ""
            return Int(after.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? -1
        }
        return (count("TFF"), count("BFF"), count("Progressive"))
    }

    /// PSNR-Y of a rung in `farm verify`'s table.
    static func psnr(_ report: String, rung: String) -> Double? {
        guard let row = report.split(separator: "\n").first(where: { $0.hasPrefix(rung + " ") }) else { return nil }
        let fields = row.split(separator: " ")
        return fields.count > 8 ? Double(fields[8]) : nil
    }

    @Test(.timeLimit(.minutes(10)))
    func interlacedSourceComesOutProgressive() async throws {
        let directory = try TemporaryDirectory("farm-interlaced")
        defer { directory.remove() }
        let source = directory.file("interlaced-1080i.mp4")
        // 1080i25 top field first: two 50 fps pictures woven into each frame, coded as interlaced H.264.
        try run(
            "ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=50:duration=2",
                "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
                "-vf", "tinterlace=interleave_top,fieldorder=tff,format=yuv420p",
                "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme", "-x264-params", "tff=1",
                "-g", "25", "-c:a", "aac", source,
            ]
        )
        let before = try Self.fieldVerdict(source)
        #expect(before.tff > 40 && before.progressive == 0, "the source is interlaced: \(before)")

        let output = directory.file("out")
        try await FarmBinary.transcode(
            source,
            into: output,
            options: ["--agents", "2", "--segment-duration", "1", "--rungs", "360p,1080p"]
        )
        for rung in ["360p", "1080p"] {
            let after = try Self.fieldVerdict("\(output)/\(rung)/playlist.m3u8")
            #expect(after.tff == 0 && after.bff == 0 && after.progressive == 50, "\(rung) combs: \(after)")
        }
        // The frame rate stays the source's (25 frames a second, not the 50 fields): every source frame once.
        let report = try run(FarmBinary.path, ["verify", source, output, "--min-psnr", "30"])
        #expect(report.contains("PASSED: every check holds"), "\(report)")
        #expect(try Probe.videoFrameCount("\(output)/1080p/playlist.m3u8") == 50)
    }

    @Test(.timeLimit(.minutes(10)))
    func fullRangeSourceComesOutLimitedRangeAndTagged() async throws {
        let directory = try TemporaryDirectory("farm-range")
        defer { directory.remove() }
        // The same picture as HEVC in full range (a phone's) and in limited range.
        var reports: [String: String] = [:]
        for (name, range) in [("full", "full"), ("limited", "limited")] {
            let source = directory.file("\(name).mp4")
            try run(
                "ffmpeg",
                [
                    "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
                    "-vf", "scale=out_range=\(range == "full" ? "pc" : "tv"),format=yuv420p",
                    "-c:v", "libx265", "-x265-params", "log-level=error:keyint=25:range=\(range)",
                    "-color_range", range == "full" ? "pc" : "tv", "-tag:v", "hvc1", source,
                ]
            )
            let sourceRange = try run(
                "ffprobe",
                [
                    "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=color_range", "-of", "csv=p=0",
                    source,
                ]
            )
            #expect(sourceRange.hasPrefix(range == "full" ? "pc" : "tv"), "\(name) source: \(sourceRange)")
            let output = directory.file("out-\(name)")
            try await FarmBinary.transcode(source, into: output, options: ["--agents", "2", "--segment-duration", "2"])
            let tags = try run(
                "ffprobe",
                [
                    "-v", "error", "-select_streams", "v:0",
                    "-show_entries", "stream=color_range,color_space,color_primaries,color_transfer",
                    "-of", "csv=p=0", "\(output)/240p/playlist.m3u8",
                ]
            )
            #expect(Set(tags.split(separator: "\n")) == ["tv,bt709,bt709,bt709"], "\(name) output tags: \(tags)")
            let report = try run(FarmBinary.path, ["verify", source, output, "--min-psnr", "30"])
            #expect(report.contains("PASSED: every check holds"), "\(report)")
            reports[name] = report
        }
        // Against the source converted to limited range the same way, the full-range source's rung is as close as the
        // limited-range source's: its levels were converted, not passed through as if they were limited.
        let full = try #require(Self.psnr(reports["full"]!, rung: "240p"))
        let limited = try #require(Self.psnr(reports["limited"]!, rung: "240p"))
        #expect(full >= limited - 0.5, "PSNR-Y \(full) dB from full range, \(limited) dB from limited range")
    }
}
