import FarmFormats
import FarmMedia
import Foundation

// Smoke benchmark: the same HLS ladder made by farm (all-in-one, N local agents) and by the plain ffmpeg way (one
// ffmpeg process decoding once and encoding every rung), in one run on one machine, reported as a ratio.
//
//   swift run -c release --package-path benchmarks FarmBenchmarks [--seconds 30] [--height 720] [--agents 2]
//
// The farm binary is ../.build/release/farm when built, else ../.build/debug/farm (set FARM_BINARY to choose).

struct Options {
    var seconds = 30
    var height = 720
    var agents = ProcessInfo.processInfo.activeProcessorCount

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--seconds": self.seconds = Int(iterator.next() ?? "") ?? self.seconds
            case "--height": self.height = Int(iterator.next() ?? "") ?? self.height
            case "--agents": self.agents = Int(iterator.next() ?? "") ?? self.agents
            default: break
            }
        }
    }
}

@discardableResult
func run(_ executable: String, _ arguments: [String]) throws -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let log = FileHandle(forWritingAtPath: "/dev/null")
    process.standardOutput = log
    process.standardError = log
    let started = ContinuousClock.now
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NSError(
            domain: "bench",
            code: Int(process.terminationStatus),
            userInfo: [
                NSLocalizedDescriptionKey:
                    "\(executable) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)"
            ]
        )
    }
    let elapsed = ContinuousClock.now - started
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let root = benchmarks.deletingLastPathComponent()
let results = benchmarks.appendingPathComponent("results")
try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
let farm =
    ProcessInfo.processInfo.environment["FARM_BINARY"]
    ?? [".build/release/farm", ".build/debug/farm"].map { root.appendingPathComponent($0).path }
    .first { FileManager.default.isExecutableFile(atPath: $0) }
    ?? "farm"

let width = (options.height * 16 / 9) / 2 * 2
let source = results.appendingPathComponent("source-\(options.height)p-\(options.seconds)s.mp4").path
if !FileManager.default.fileExists(atPath: source) {
    try run(
        "ffmpeg",
        [
            "-y", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(options.height):rate=30:duration=\(options.seconds)",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=\(options.seconds)",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
            source,
        ]
    )
}

// The rungs farm would choose, so both ways produce the same ladder.
let info = try SourceProbe.probe(path: source)
let renditions = Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.video.height)
let settings = EncoderSettings.default

let ffmpegOutput = results.appendingPathComponent("ffmpeg-hls").path
try? FileManager.default.removeItem(atPath: ffmpegOutput)
try FileManager.default.createDirectory(atPath: ffmpegOutput, withIntermediateDirectories: true)
var filter = "[0:v]split=\(renditions.count)" + renditions.indices.map { "[s\($0)]" }.joined()
var arguments = ["-y", "-i", source]
for (index, rendition) in renditions.enumerated() {
    filter += ";[s\(index)]scale=\(rendition.width):\(rendition.height)[v\(index)]"
}
arguments += ["-filter_complex", filter]
for (index, rendition) in renditions.enumerated() {
    arguments += [
        "-map", "[v\(index)]", "-c:v:\(index)", "libx264", "-preset:v:\(index)", settings.preset,
        "-crf:v:\(index)", "\(settings.crf)", "-maxrate:v:\(index)", "\(rendition.maxBitrate)",
        "-bufsize:v:\(index)", "\(rendition.maxBitrate * 2)", "-bf:v:\(index)", "0",
    ]
}
arguments += ["-map", "0:a", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"]
arguments += ["-force_key_frames", "expr:gte(t,n_forced*6)", "-sc_threshold", "0"]
arguments += [
    "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
    "-var_stream_map", (renditions.indices.map { "v:\($0)" } + ["a:0"]).joined(separator: " "),
    "-master_pl_name", "master.m3u8", "\(ffmpegOutput)/stream_%v/playlist.m3u8",
]
let ffmpegSeconds = try run("ffmpeg", arguments)

let farmOutput = results.appendingPathComponent("farm-hls").path
try? FileManager.default.removeItem(atPath: farmOutput)
let farmSeconds = try run(farm, ["transcode", source, "-o", farmOutput, "--agents", "\(options.agents)"])

print(
    "farm smoke benchmark: \(options.seconds) s of \(options.height)p30 with audio -> \(renditions.map(\.name).joined(separator: ", ")) + audio"
)
print(
    String(
        format: "  plain ffmpeg (one process, all rungs): %7.2f s  (%.2f× realtime)",
        ffmpegSeconds,
        Double(options.seconds) / ffmpegSeconds
    )
)
print(
    String(
        format: "  farm transcode, %d local agents:        %7.2f s  (%.2f× realtime)",
        options.agents,
        farmSeconds,
        Double(options.seconds) / farmSeconds
    )
)
print(String(format: "  ratio (ffmpeg time / farm time):       %7.2f", ffmpegSeconds / farmSeconds))
print("  farm binary: \(farm)")
