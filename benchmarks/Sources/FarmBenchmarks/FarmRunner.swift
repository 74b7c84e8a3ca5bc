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
        // The script prints the URL alone on standard output. Not Foundation's `Process`: it can miss the exit of a
        // child when this program also reaps its own with `wait4`.
        let urlFile = workspace.log("postgres-url")
        _ = try ProcessRun.run(
            ["bash", script, "start", self.directory, Self.port],
            log: urlFile,
            errors: workspace.log("postgres-start")
        )
        self.databaseURL = try String(contentsOfFile: urlFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        self.server = try ServerCPU(postgresDataDirectory: self.directory + "/data")
    }

    func stop() {
        let script = self.workspace.root.appendingPathComponent("deploy/postgres.sh").path
        _ = try? ProcessRun.run(["bash", script, "stop", self.directory], log: self.workspace.log("postgres-stop"))
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
