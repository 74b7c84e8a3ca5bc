import FarmCoordinator
import Foundation

/// Runs a command and returns its standard output; throws with its standard error when it exits non-zero.
///
/// Output goes through temporary files, not pipes: a daemon the command starts (a PostgreSQL server) may inherit
/// the descriptors, and a pipe it holds open would never reach its end.
@discardableResult
package func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let base = NSTemporaryDirectory() + "farm-run-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    let error = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    process.standardOutput = output
    process.standardError = error
    try process.run()
    process.waitUntilExit()
    try? output.close()
    try? error.close()
    let standardOutput = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
    guard process.terminationStatus == 0 else {
        throw CommandFailed(
            command: ([executable] + arguments).joined(separator: " "),
            status: process.terminationStatus,
            standardError: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "",
            standardOutput: standardOutput
        )
    }
    return standardOutput
}

/// Runs a command through system(3), its standard output and error together in the result. For commands that may
/// leave a daemon running (a PostgreSQL server): it inherits Foundation's `Process` descriptors, and
/// `Process.waitUntilExit` then waits for the daemon, not the command.
package func runThroughShell(
    _ arguments: [String],
    environment: [String: String] = [:]
) -> (status: Int32, output: String) {
    let outputPath = NSTemporaryDirectory() + "farm-shell-\(UUID().uuidString).log"
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let quoted = LocalPostgres.shellQuoted
    let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(quoted($0.value))" }
    let command = (["env"] + assignments + arguments.map(quoted)).joined(separator: " ")
    let status = system("\(command) > \(quoted(outputPath)) 2>&1 < /dev/null")
    let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    // system(3) returns a wait status: the exit code is its second byte.
    return (status == -1 ? -1 : (status >> 8) & 0xFF, output)
}

package struct CommandFailed: Error, CustomStringConvertible {
    package var command: String
    package var status: Int32
    package var standardError: String
    package var standardOutput: String
    package var description: String {
        "\(command) exited with \(status): \(standardError.suffix(2000))\(standardOutput.suffix(3000))"
    }

    package init(command: String, status: Int32, standardError: String, standardOutput: String = "") {
        self.command = command
        self.status = status
        self.standardError = standardError
        self.standardOutput = standardOutput
    }
}

/// A fresh temporary folder, removed by `remove()`.
package struct TemporaryDirectory {
    package let path: String

    package init(_ label: String = "farm-test") throws {
        self.path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    package func file(_ name: String) -> String { (self.path as NSString).appendingPathComponent(name) }

    package func remove() { try? FileManager.default.removeItem(atPath: self.path) }
}

/// Test media made by ffmpeg's lavfi sources at test time; nothing binary is committed.
package enum Fixtures {
    /// Runs `body` with a fresh folder holding `clip.mp4` (made as `makeClip` makes it) and the clip's path; the folder
    /// is removed whatever happens.
    package static func withClip<Result>(
        _ label: String,
        seconds: Double,
        width: Int,
        height: Int,
        gop: Int = 50,
        _ body: (TemporaryDirectory, String) async throws -> Result
    ) async throws -> Result {
        let directory = try TemporaryDirectory(label)
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Self.makeClip(at: source, seconds: seconds, width: width, height: height, gop: gop)
        return try await body(directory, source)
    }

    /// A clip with a moving test pattern and a tone, H.264 + AAC in MP4, keyframes every `gop` frames.
    package static func makeClip(
        at path: String,
        seconds: Double,
        width: Int = 854,
        height: Int = 480,
        frameRate: Int = 25,
        gop: Int = 50,
        audio: Bool = true
    ) throws {
        var arguments = [
            "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height):rate=\(frameRate):duration=\(seconds)",
        ]
        if audio {
            arguments += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=\(seconds)", "-ac", "2"]
        }
        arguments += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "\(gop)", "-pix_fmt", "yuv420p"]
        if audio { arguments += ["-c:a", "aac", "-b:a", "128k"] }
        arguments += [path]
        try run("ffmpeg", arguments)
    }

    /// Random-looking bytes with a video-like name, the same every run: truly random bytes are now and then taken
    /// by libavformat's probe for some format (an MP3 frame sync among 200 KB is likely enough), which made the
    /// error an uploader sees change from run to run.
    package static func makeGarbage(at path: String, bytes: Int = 200_000, seed: UInt64 = 7) throws {
        // SplitMix64: a fixed, well-mixed sequence with no dependency.
        var state = seed
        var data = Data(capacity: bytes)
        while data.count < bytes {
            state &+= 0x9E37_79B9_7F4A_7C15
            var mixed = state
            mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            mixed ^= mixed >> 31
            withUnsafeBytes(of: mixed) { data.append(contentsOf: $0.prefix(bytes - data.count)) }
        }
        try data.write(to: URL(fileURLWithPath: path))
    }
}

/// What ffprobe says about a file or playlist.
package enum Probe {
    /// Decoded video frame count of the first video stream (`-count_frames`).
    package static func videoFrameCount(_ path: String) throws -> Int {
        let output = try run(
            "ffprobe",
            [
                "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames",
                "-of", "csv=p=0", path,
            ]
        )
        guard let count = Int(output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").first ?? "")
        else {
            throw CommandFailed(command: "ffprobe \(path)", status: 0, standardError: "no frame count in: \(output)")
        }
        return count
    }

    /// Width and height of the first video stream's pictures.
    package static func videoSize(_ path: String) throws -> (width: Int, height: Int) {
        let output = try run(
            "ffprobe",
            ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", path]
        )
        let fields = (output.split(separator: "\n").first ?? "").split(separator: ",").compactMap { Int($0) }
        guard fields.count == 2 else {
            throw CommandFailed(command: "ffprobe \(path)", status: 0, standardError: "no picture size in: \(output)")
        }
        return (fields[0], fields[1])
    }

    /// Presentation times (seconds) of the keyframes of the first video stream.
    package static func keyframeTimes(_ path: String) throws -> [Double] {
        let output = try run(
            "ffprobe",
            ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path]
        )
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count >= 2, fields[1].contains("K") else { return nil }
            return Double(fields[0])
        }.sorted()
    }

    /// Presentation times (seconds) of every packet of the first stream of a kind (`v:0`, the video's frames), sorted,
    /// as ffprobe reads them: `path` may be an HLS playlist, read through libavformat's HLS demuxer as ffmpeg, mpv and
    /// VLC read it.
    package static func framePresentationTimes(_ path: String, stream: String = "v:0") throws -> [Double] {
        let output = try run(
            "ffprobe",
            ["-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time", "-of", "csv=p=0", path]
        )
        return output.split(separator: "\n").compactMap {
            Double($0.trimmingCharacters(in: .whitespaces).split(separator: ",").first ?? "")
        }.sorted()
    }

    /// Duration in seconds of the first stream of a kind, from the packets' timestamps and durations.
    package static func streamDuration(_ path: String, stream: String = "a:0") throws -> Double {
        let output = try run(
            "ffprobe",
            [
                "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts_time,duration_time", "-of",
                "csv=p=0", path,
            ]
        )
        var start = Double.infinity
        var end = -Double.infinity
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: ",").compactMap { Double($0) }
            guard fields.count == 2 else { continue }
            start = min(start, fields[0])
            end = max(end, fields[0] + fields[1])
        }
        return end - start
    }
}
