import Foundation

/// Runs `farm transcode` with its defaults against one PostgreSQL started before the timed runs
/// (`deploy/postgres.sh`), so that the figures compare transcoding and not `initdb`. The server's CPU is read from
/// `/proc` around each run and added to the farm's.
struct FarmRunner {
    let workspace: Workspace
    let directory: String
    let databaseURL: String
    let server: ServerCPU

    static let port = ProcessInfo.processInfo.environment["BENCH_PG_PORT"] ?? "55444"

    init(workspace: Workspace) throws {
        self.workspace = workspace
        self.directory = "/tmp/farm-bench-pg-\(Self.port)"
        let script = workspace.root.appendingPathComponent("deploy/postgres.sh").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "start", self.directory, Self.port]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let url = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("deploy/postgres.sh start \(self.directory) \(Self.port) failed (message above)")
        }
        self.databaseURL = url.trimmingCharacters(in: .whitespacesAndNewlines)
        self.server = try ServerCPU(postgresDataDirectory: self.directory + "/data")
    }

    func stop() {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [
            self.workspace.root.appendingPathComponent("deploy/postgres.sh").path, "stop", self.directory,
        ]
        try? process.run()
        process.waitUntilExit()
    }

    /// The command, as the report shows it: the farm's defaults, only the database named.
    func command(source: String, output: String, extra: [String] = []) -> [String] {
        [self.workspace.farm, "transcode", source, "-o", output] + extra + ["--database-url", self.databaseURL]
    }

    func transcode(
        source: String,
        output: String,
        extra: [String] = [],
        log: String,
        poll: ((Double) -> Void)? = nil
    ) throws -> Measurement {
        try? FileManager.default.removeItem(atPath: output)
        let before = self.server.seconds()
        var measurement = try ProcessRun.run(
            self.command(source: source, output: output, extra: extra),
            log: log,
            poll: poll
        )
        measurement.outsideCPUSeconds = max(0, self.server.seconds() - before)
        return measurement
    }
}
