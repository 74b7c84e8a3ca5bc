import FarmTestSupport
import Foundation
import Testing

/// Interlaced and full-range sources through `farm transcode` (coordinator, two agents, a real PostgreSQL), checked
/// by ffmpeg's own filters and ffprobe: web rungs are progressive, limited range, and say so.
@Suite("Picture conversion", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct PictureConversionTests {
    /// ffmpeg's `idet` verdict over a file or playlist: frames it calls top-field-first, bottom-field-first and
    /// progressive (multi-frame detection).
    static func fieldVerdict(_ path: String) throws -> (tff: Int, bff: Int, progressive: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-hide_banner", "-nostats", "-i", path, "-vf", "idet", "-f", "null", "-"]
        let text = try Self.standardError(of: process)
        guard let line = text.split(separator: "\n").last(where: { $0.contains("Multi frame detection") }) else {
            throw CommandFailed(command: "ffmpeg idet \(path)", status: process.terminationStatus, standardError: text)
        }
        func count(_ label: String) -> Int {
            let after = line.components(separatedBy: "\(label):").dropFirst().first ?? ""
            return Int(after.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? -1
        }
        return (count("TFF"), count("BFF"), count("Progressive"))
    }

    /// PSNR-Y of `output` against `source` converted by ffmpeg's own scaler to limited-range BT.709 at its size: a
    /// reference that does not go through the farm's conversion code, so a conversion the farm skips shows.
    static func psnrAgainstLimitedRange(output: String, source: String, sourceRange: String) throws -> Double {
        let reference =
            "[1:v]scale=in_range=\(sourceRange):out_range=tv:in_color_matrix=bt601:out_color_matrix=bt709"
            + ",format=yuv420p[reference];[0:v]format=yuv420p[output];[output][reference]psnr"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "ffmpeg", "-hide_banner", "-nostats", "-i", output, "-i", source, "-filter_complex", reference, "-f",
            "null",
            "-",
        ]
        let text = try Self.standardError(of: process)
        guard let line = text.split(separator: "\n").last(where: { $0.contains("PSNR y:") }),
            let value = line.components(separatedBy: "PSNR y:").last?.split(separator: " ").first,
            let psnr = Double(value)
        else {
            throw CommandFailed(
                command: "ffmpeg psnr \(output)",
                status: process.terminationStatus,
                standardError: text
            )
        }
        return psnr
    }

    /// The darkest and brightest luma of a video's first frame (ffmpeg's `signalstats`).
    static func lumaRange(_ path: String) throws -> (min: Int, max: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "ffmpeg", "-hide_banner", "-nostats", "-i", path, "-frames:v", "1", "-vf",
            "signalstats,metadata=print:key=lavfi.signalstats.YMIN,metadata=print:key=lavfi.signalstats.YMAX",
            "-f", "null", "-",
        ]
        let text = try Self.standardError(of: process)
        func value(_ key: String) -> Int? {
            text.components(separatedBy: "lavfi.signalstats.\(key)=").dropFirst().first.flatMap {
                Int($0.prefix { $0.isNumber })
            }
        }
        guard let low = value("YMIN"), let high = value("YMAX") else {
            throw CommandFailed(
                command: "ffmpeg signalstats \(path)",
                status: process.terminationStatus,
                standardError: text
            )
        }
        return (low, high)
    }

    /// Runs `process` to its end and returns what it wrote to standard error (through a file: no pipe to fill).
    static func standardError(of process: Process) throws -> String {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ffmpeg-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardError = handle
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return try String(contentsOf: log, encoding: .utf8)
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
        var psnr: [String: Double] = [:]
        for (name, range) in [("full", "full"), ("limited", "limited")] {
            let source = directory.file("\(name).mp4")
            try run(
                "ffmpeg",
                [
                    "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
                    // 10-bit: 8-bit full range decodes as the "J" formats, which swscale converts unasked; 10-bit
                    // full range is a plain format with a range flag, which only the farm's explicit ranges convert.
                    "-vf", range == "full" ? "scale=out_range=pc,format=yuv420p10le" : "format=yuv420p10le",
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
            psnr[name] = try Self.psnrAgainstLimitedRange(
                output: "\(output)/240p/playlist.m3u8",
                source: source,
                sourceRange: range == "full" ? "pc" : "tv"
            )
            if range == "full" {
                // The rung is closer to the source converted from full range than to the source read as limited.
                let passedThrough = try Self.psnrAgainstLimitedRange(
                    output: "\(output)/240p/playlist.m3u8",
                    source: source,
                    sourceRange: "tv"
                )
                #expect(
                    psnr[name]! > passedThrough + 1,
                    "\(psnr[name]!) dB converted, \(passedThrough) dB read as limited"
                )
            }
        }
        // Against the source converted to limited range by ffmpeg, the full-range source's rung is about as close as
        // the limited-range source's (41.1 dB; the range conversion costs a little precision: 40.2 dB): its levels
        // were converted, not passed through as if they were limited (39.0 dB).
        // The full-range source's darkest pixels are below limited range's black (64 in 10 bits): it is full range.
        let sourceLevels = try Self.lumaRange(directory.file("full.mp4"))
        #expect(sourceLevels.min < 48, "the 10-bit source is full range: \(sourceLevels)")
        let full = try #require(psnr["full"])
        let limited = try #require(psnr["limited"])
        #expect(limited > 35, "PSNR-Y \(limited) dB from limited range")
        #expect(full >= limited - 1.5, "PSNR-Y \(full) dB from full range, \(limited) dB from limited range")
    }
}
