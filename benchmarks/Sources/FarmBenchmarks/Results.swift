import Foundation

/// Everything one `make bench` measured: written to `results/results.json`, read by `benchmarks/charts.py` and by
/// `Report`.
struct Results: Codable, Sendable {
    var date: String
    var quick: Bool
    var machine: Machine
    var postgres: String
    var ladders: [LadderResult] = []
    var firstSegment: FirstSegmentResult?
    var extraction: ExtractionResult?
    var bFrames: [BFramesSource] = []
    /// Figures that failed, with their errors: the report still has every other one.
    var failures: [String] = []
}

struct Machine: Codable, Sendable {
    var cpu: String
    var cores: Int
    var memoryGiB: Double
    var ffmpeg: String
    var farm: String
    var os: String

    static func describe(_ workspace: Workspace) -> Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kib =
            meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let os = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { $0.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        let ffmpeg = (try? ProcessRun.output(["ffmpeg", "-hide_banner", "-version"]))?.split(separator: "\n").first
        let commit = (try? ProcessRun.output(["git", "-C", workspace.root.path, "describe", "--always", "--dirty"]))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return Machine(
            cpu: model ?? "unknown",
            cores: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: kib / 1_048_576,
            ffmpeg: ffmpeg.map(String.init) ?? "unknown",
            farm: "\(workspace.relative(workspace.farm)) at commit \(commit ?? "unknown")",
            os: os ?? "unknown"
        )
    }
}

/// One side's runs, in the order they ran.
struct SideRuns: Codable, Sendable {
    var command: String
    var runs: [Measurement] = []

    var wall: Double { median(self.runs.map(\.wallSeconds)) }
    var cpu: Double { median(self.runs.map(\.cpuSeconds)) }
    var outsideCPU: Double { median(self.runs.map(\.outsideCPUSeconds)) }
    var peakMemoryMiB: Double { median(self.runs.map { Double($0.peakMemoryKiB) / 1024 }) }
}

struct RungComparison: Codable, Sendable {
    var name: String
    var farmPSNR: Double?
    var ffmpegPSNR: Double?
    var farmBytes: Int
    var ffmpegBytes: Int
}

struct LadderResult: Codable, Sendable {
    var seconds: Int
    var sourceCommands: [String]
    var farm: SideRuns
    var ffmpeg: SideRuns
    var psnrCommands: [String] = []
    var rungs: [RungComparison] = []
}

struct FirstSegmentResult: Codable, Sendable {
    struct Side: Codable, Sendable {
        var command: String
        /// Seconds from start until every rendition (video rungs and audio) had a playlist naming an existing
        /// segment; nil when that happened only after the process ended.
        var firstPlayable: Double?
        var wall: Double
    }
    var minutes: Int
    var height: Int
    var sourceCommands: [String]
    var farm: Side
    var ffmpeg: Side
}

struct ExtractionResult: Codable, Sendable {
    var minutes: Int
    var height: Int
    var sourceCommands: [String]
    var chunkCount: Int
    var probeSeconds: Double
    var firstChunk: Int
    var lastChunk: Int
    var firstRuns: [Double]
    var lastRuns: [Double]
    var firstBytes: Int
    var lastBytes: Int

    var ratio: Double { median(self.lastRuns) / max(median(self.firstRuns), 1e-9) }
}

/// One encode's rate and quality.
struct RatePoint: Codable, Sendable {
    var crf: Int
    var kilobitsPerSecond: Double
    var psnr: Double
}

struct BFramesRung: Codable, Sendable {
    var name: String
    var off: [RatePoint]
    var on: [RatePoint]
    /// Percent rate of "on" against "off" at equal PSNR-Y; negative saves. Nil when the curves do not overlap.
    var bdRate: Double?
}

struct BFramesSource: Codable, Sendable {
    var name: String
    var about: String
    var seconds: Double
    var sourceCommands: [String]
    var offCommand = ""
    var onCommand = ""
    var psnrCommand = ""
    var rungs: [BFramesRung] = []

    /// The ladder's BD-rate: the rungs' mean.
    var meanBDRate: Double? {
        let rates = self.rungs.compactMap(\.bdRate)
        return rates.isEmpty ? nil : rates.reduce(0, +) / Double(rates.count)
    }
}
