import FarmAgent
import FarmCoordinator
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// A coordinator and agents in this process, over real TCP on loopback and a real PostgreSQL.
package enum InProcessFarm {
    /// Runs a coordinator (on a free port) and `agents` agents until `body` returns.
    package static func run<Result: Sendable>(
        database: TestDatabase,
        agents: Int,
        leaseSeconds: Double = 30,
        pollIntervalSeconds: Double = 2,
        body: @Sendable (JobStore, Int) async throws -> Result
    ) async throws -> Result {
        let client = PostgresClient(configuration: database.url.clientConfiguration, backgroundLogger: testLogger)
        let secret = ClusterSecret("test-secret")
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let coordinator = CoordinatorService(
            client: client,
            configuration: CoordinatorConfiguration(
                host: "127.0.0.1",
                port: 0,
                secret: secret,
                leaseSeconds: leaseSeconds,
                heartbeatIntervalSeconds: min(5, leaseSeconds / 3),
                reapIntervalSeconds: 1,
                pollIntervalSeconds: pollIntervalSeconds
            ),
            logger: testLogger,
            onListening: { portContinuation.yield($0) }
        )
        let watch = TeardownWatch("in-process farm")
        defer { watch.ended() }
        // The farm stops before its database client, as `ServiceGroup` does in `farm coordinator`: a query started
        // while the pool shuts down can wait forever for a connection (PostgresNIO 1.33), hanging the teardown.
        return try await withThrowingTaskGroup(of: Void.self) { database in
            database.addTask { await watch.track("postgres client") { await client.run() } }
            defer { database.cancelAll() }
            return try await Self.runFarm(coordinator, agents: agents, secret: secret, ports: ports, watch: watch) {
                try await body(JobStore(client: client, logger: testLogger), $0)
            }
        }
    }

    private static func runFarm<Result: Sendable>(
        _ coordinator: CoordinatorService,
        agents: Int,
        secret: ClusterSecret,
        ports: AsyncStream<Int>,
        watch: TeardownWatch,
        body: @Sendable (Int) async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watch.track("coordinator") { try await coordinator.run() } }
            defer {
                group.cancelAll()
                watch.cancelled()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ConfigurationError("the coordinator did not start") }
            for index in 0..<agents {
                let agent = AgentService(
                    configuration: AgentConfiguration(
                        coordinatorHost: "127.0.0.1",
                        coordinatorPort: port,
                        secret: secret,
                        name: "test-agent-\(index + 1)"
                    ),
                    logger: testLogger
                )
                group.addTask { try await watch.track("agent \(index + 1)") { try await agent.run() } }
            }
            return try await body(port)
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
        let database = try await TestDatabase.create()
        do {
            let status = try await Self.run(database: database, agents: agents) { store, _ in
                let job = try await store.submit(source: source, outputDirectory: output, settings: settings)
                return try await Self.waitForJob(store, job)
            }
            await database.drop()
            return status
        } catch {
            await database.drop()
            throw error
        }
    }
}

/// The `farm` executable built next to the tests.
package enum FarmBinary {
    /// Runs `farm transcode SOURCE -o OUTPUT` as a user would, on a fresh database of the test server (dropped
    /// after), under a time limit so a stalled farm fails the test instead of hanging it. Returns what it printed.
    @discardableResult
    package static func transcode(_ source: String, into output: String, options: [String]) async throws -> String {
        let database = try await TestDatabase.create()
        let transcoded = Result {
            try run(
                "timeout",
                [
                    "-k", "10", "300", Self.path, "transcode", source, "--output", output,
                    "--database-url", database.connectionString, "--log-level", "error",
                ] + options
            )
        }
        await database.drop()
        return try transcoded.get()
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
