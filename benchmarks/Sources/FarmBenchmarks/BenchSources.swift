import Foundation

/// A generated source and the commands that made it (shown in the report even when it came from the cache).
struct GeneratedSource: Sendable {
    var path: String
    var commands: [[String]]
}

/// The sources every figure uses, synthesised by ffmpeg and cached in `results/sources/` by their parameters.
enum BenchSources {
    /// 1080p30 testsrc2 with light temporal noise (so the encoder has real work, unlike a clean pattern), 7 Mb/s
    /// H.264 with keyframes every 2 s, AAC stereo. Shorter lengths are cut from the longest by stream copy. The
    /// longest is encoded whole: 30 s looped to 120 s by stream copy moved the 120 s figure's wall ratio from 1.15 to
    /// 1.25 and the lower rungs' sizes by 6-8 % in one run, unexplained yet. With x264's `superfast`: `veryfast` took
    /// 3.2 of `make bench`'s minutes for the 120 s source, `superfast` 2.5 times less, and the same decoder work but
    /// for 12 % (one thread, 10 s of it: 2.31 s against 2.64 s; `ultrafast`, without CABAC and the loop filter, 1.05).
    static func ladder(seconds: Int, longest: Int, in workspace: Workspace) throws -> GeneratedSource {
        let full = workspace.sources.appendingPathComponent("ladder-1080p30-superfast-\(longest)s.mp4").path
        var commands = [
            self.pattern(width: 1920, height: 1080, seconds: longest, bitrate: "7M", preset: "superfast", output: full)
        ]
        guard seconds != longest else {
            try self.make(full, commands, workspace)
            return GeneratedSource(path: full, commands: commands)
        }
        let cut = workspace.sources.appendingPathComponent("ladder-1080p30-superfast-\(seconds)s.mp4").path
        commands.append(["ffmpeg", "-hide_banner", "-y", "-i", full, "-t", "\(seconds)", "-c", "copy", cut])
        try self.make(cut, commands, workspace)
        return GeneratedSource(path: cut, commands: commands)
    }

    /// A long source quickly: one minute of pattern, repeated by stream copy (`-stream_loop`), so it costs seconds
    /// to make however long it is.
    static func looped(minutes: Int, height: Int, bitrate: String, in workspace: Workspace) throws -> GeneratedSource {
        let width = (height * 16 / 9 + 1) / 2 * 2
        let short = workspace.sources.appendingPathComponent("pattern-\(height)p30-\(bitrate)-60s.mp4").path
        let long = workspace.sources.appendingPathComponent("looped-\(height)p30-\(bitrate)-\(minutes)min.mp4").path
        let commands = [
            self.pattern(
                width: width,
                height: height,
                seconds: 60,
                bitrate: bitrate,
                preset: "veryfast",
                output: short
            ),
            ["ffmpeg", "-hide_banner", "-y", "-stream_loop", "\(minutes - 1)", "-i", short, "-c", "copy", long],
        ]
        try self.make(long, commands, workspace)
        return GeneratedSource(path: long, commands: commands)
    }

    /// A slow zoom into the Mandelbrot set (libavfilter's default view) with light film grain, 1080p30, nearly
    /// lossless: smooth gradients, fine detail along every edge, and motion everywhere, unlike the pattern's flat
    /// areas and translations. Synthetic (this machine reaches no video library), so it stands in for camera
    /// footage; the report says so.
    static func fractal(seconds: Int, in workspace: Workspace) throws -> GeneratedSource {
        let path = workspace.sources.appendingPathComponent("fractal-zoom-1080p30-\(seconds)s.mp4").path
        let commands = [
            [
                "ffmpeg", "-hide_banner", "-y", "-f", "lavfi", "-i", "mandelbrot=size=1920x1080:rate=30",
                "-t", "\(seconds)", "-vf", "noise=alls=2:allf=t", "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "10", "-g", "60", "-pix_fmt", "yuv420p", path,
            ]
        ]
        try self.make(path, commands, workspace)
        return GeneratedSource(path: path, commands: commands)
    }

    private static func pattern(
        width: Int,
        height: Int,
        seconds: Int,
        bitrate: String,
        preset: String,
        output: String
    ) -> [String] {
        [
            "ffmpeg", "-hide_banner", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=30:duration=\(seconds)",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=\(seconds)",
            "-vf", "noise=alls=6:allf=t", "-c:v", "libx264", "-preset", preset, "-b:v", bitrate,
            "-maxrate", bitrate, "-bufsize", bitrate, "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-shortest", output,
        ]
    }

    /// Runs the commands whose outputs are missing, in order, writing each output under a temporary name first so
    /// an interrupted run never leaves a truncated source in the cache.
    private static func make(_ target: String, _ commands: [[String]], _ workspace: Workspace) throws {
        for command in commands {
            guard let output = command.last, !FileManager.default.fileExists(atPath: output) else { continue }
            let name = output as NSString
            let partial = name.deletingPathExtension + ".partial." + name.pathExtension
            say("generating \(workspace.relative(output))")
            _ = try ProcessRun.run(
                command.dropLast() + [partial],
                log: workspace.log("source-" + URL(fileURLWithPath: output).lastPathComponent)
            )
            try FileManager.default.moveItem(atPath: partial, toPath: output)
        }
    }
}
