import FarmAgent
import FarmAllInOne
import FarmCoordinator
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// A coordinator and agents in this process, over real TCP on loopback and a real PostgreSQL.
package enum InProcessFarm {
    /// Runs a coordinator (on a free port) and `agents` agents until `body` returns: the all-in-one farm of
    /// `farm transcode`, with settings that make tests quick, every part watched for a stalled teardown.
    package static func run<Result: Sendable>(
        database: TestDatabase,
        agents: Int,
        leaseSeconds: Double = 30,
        pollIntervalSeconds: Double = 2,
        agentFaults: FaultInjection = FaultInjection(),
        body: @Sendable (JobStore, Int) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: database.url.clientConfiguration, backgroundLogger: testLogger)
        let watch = TeardownWatch("in-process farm")
        defer { watch.ended() }
        var configuration = AllInOneFarm.Configuration(
            agents: agents,
            agentNamePrefix: "test-agent-",
            coordinator: CoordinatorConfiguration(
                secret: ClusterSecret("test-secret"),
                leaseSeconds: leaseSeconds,
                heartbeatIntervalSeconds: min(5, leaseSeconds / 3),
                reapIntervalSeconds: 1,
                pollIntervalSeconds: pollIntervalSeconds
            )
        )
        configuration.agentFaults = agentFaults
        let farm = AllInOneFarm(
            client: client,
            configuration: configuration,
            logger: testLogger,
            runChild: { name, body in try await watch.track(name) { try await body() } }
        )
        // The farm stops before its database client, as `ServiceGroup` does in `farm coordinator`: a query started
        // while the pool shuts down can wait forever for a connection (PostgresNIO 1.33), hanging the teardown.
        return try await withThrowingTaskGroup(of: Void.self) { database in
            database.addTask { await watch.track("postgres client") { await client.run() } }
            defer { database.cancelAll() }
            return try await farm.run { running in
                // From here on the farm is being stopped: the watch names any part that does not stop.
                defer { watch.cancelled() }
                return try await body(running.store, running.port)
            }
        }
    }

    /// `run` on a fresh database of the test server, dropped afterwards whatever happens.
    package static func run<Result: Sendable>(
        agents: Int,
        leaseSeconds: Double = 30,
        pollIntervalSeconds: Double = 2,
        agentFaults: FaultInjection = FaultInjection(),
        body: @Sendable (JobStore, Int) async throws -> Result
    ) async throws -> Result {
        try await TestDatabase.with { database in
            try await Self.run(
                database: database,
                agents: agents,
                leaseSeconds: leaseSeconds,
                pollIntervalSeconds: pollIntervalSeconds,
                agentFaults: agentFaults,
                body: body
            )
        }
    }

    /// Waits until a job is ready or failed (at most `timeout`), returning its status.
    package static func waitForJob(
        _ store: JobStore,
        _ jobID: Int64,
        timeout: Duration = .seconds(120)
    ) async throws -> JobStatus {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status = try await store.status(jobID: jobID),
                status.state.isEnded
            {
                return status
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ConfigurationError("job \(jobID) did not finish within \(timeout)")
    }

    /// Transcodes `source` into `output` on a fresh farm with `agents` agents and a fresh database (dropped after),
    /// returning the job's final status. The default settings (2 s segments, at least 3 chunks) give short test
    /// clips several segments and chunks.
    package static func transcode(
        _ source: String,
        into output: String,
        settings: JobSettings = JobSettings(segmentDuration: 2, minimumChunks: 3),
        agents: Int = 2
    ) async throws -> JobStatus {
        try await Self.run(agents: agents) { store, _ in
            let job = try await store.submit(source: source, outputDirectory: output, settings: settings)
            return try await Self.waitForJob(store, job)
        }
    }
}

/// The `farm` executable built next to the tests.
package enum FarmBinary {
    /// Runs `farm transcode SOURCE -o OUTPUT` as a user would, on a fresh database of the test server (dropped
    /// after), under a time limit so a stalled farm fails the test instead of hanging it. Returns what it printed.
    @discardableResult
    package static func transcode(_ source: String, into output: String, options: [String]) async throws -> String {
        try await TestDatabase.with { database in
            try run(
                "timeout",
                [
                    "-k", "10", "300", Self.path, "transcode", source, "--output", output,
                    "--database-url", database.connectionString, "--log-level", "error",
                ] + options
            )
        }
    }

    package static var path: String {
        if let configured = ProcessInfo.processInfo.environment["FARM_BINARY"] { return configured }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        var folder = testBinary.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("farm").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug/farm"
    }
}

/// A child process that is killed when the test ends, its output kept in a file for failure messages.
package final class ChildProcess: @unchecked Sendable {
    package let process = Process()
    package let logPath: String

    package init(_ arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        self.process.executableURL = URL(fileURLWithPath: FarmBinary.path)
        self.process.arguments = arguments
        self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        self.process.standardOutput = log
        self.process.standardError = log
        try self.process.run()
    }

    package func signal(_ signal: Int32) { kill(self.process.processIdentifier, signal) }

    package func stop() {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while self.process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
        self.process.waitUntilExit()
    }

    package var log: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    deinit { self.stop() }
}
