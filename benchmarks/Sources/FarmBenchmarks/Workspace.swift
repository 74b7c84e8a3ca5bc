import Foundation

/// Where the benchmark reads and writes: `benchmarks/results/` for the report, its charts' data and the logs;
/// `benchmarks/results/sources/` for the generated sources (kept between runs); `benchmarks/results/work/` for
/// outputs (emptied before every run). All of it is gitignored but the README.
struct Workspace: Sendable {
    let root: URL
    let benchmarks: URL
    let results: URL
    let sources: URL
    let work: URL
    let logs: URL
    let farm: String

    init() throws {
        self.benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        self.root = self.benchmarks.deletingLastPathComponent()
        self.results = self.benchmarks.appendingPathComponent("results")
        self.sources = self.results.appendingPathComponent("sources")
        self.work = self.results.appendingPathComponent("work")
        self.logs = self.results.appendingPathComponent("logs")
        for folder in [self.results, self.sources, self.work, self.logs] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        // A release build (`make bench` builds it in this package's build folder): a debug farm would make every
        // ratio meaningless.
        let root = self.root
        let candidates = ["benchmarks/.build/release/farm", ".build/release/farm"].map {
            root.appendingPathComponent($0).path
        }
        self.farm =
            ProcessInfo.processInfo.environment["FARM_BINARY"]
            ?? candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
        guard FileManager.default.isExecutableFile(atPath: self.farm) else {
            throw BenchError(
                "no farm binary at \(self.farm): run `swift build -c release --package-path benchmarks --product farm` first (make bench does)"
            )
        }
    }

    /// An empty folder under `work/`.
    func freshOutput(_ name: String) throws -> String {
        let path = self.work.appendingPathComponent(name).path
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func log(_ name: String) -> String { self.logs.appendingPathComponent(name + ".log").path }

    /// The path as the report shows it: relative to the repository when inside it.
    func relative(_ path: String) -> String {
        let prefix = self.root.path + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}

/// Writes a progress line to standard error (standard output stays for the summary).
func say(_ message: String) {
    FileHandle.standardError.write(Data("bench: \(message)\n".utf8))
}
