import FarmCoordinator
import FarmProtocol
import Foundation
import PostgresNIO

/// A farm of real `farm` processes (coordinators, agents) on loopback and a real PostgreSQL, for fault tests:
/// processes can be killed, frozen and restarted.
package final class ProcessFarm: @unchecked Sendable {
    package let database: TestDatabase
    package let directory: TemporaryDirectory
    package let secret = "fault-test-secret"
    package private(set) var coordinators: [ChildProcess] = []
    package private(set) var coordinatorPorts: [Int] = []
    /// Each coordinator's HTTP API port, in the order they started.
    package private(set) var httpPorts: [Int] = []
    package private(set) var agents: [String: ChildProcess] = [:]
    private var started = 0

    package init(database: TestDatabase, directory: TemporaryDirectory) {
        self.database = database
        self.directory = directory
    }

    /// A fresh database and folder for one test's farm. Afterwards the processes are stopped first, so none is
    /// still connected when the database is dropped, then the database and folder go.
    package static func with(
        _ label: String,
        _ body: (ProcessFarm, TemporaryDirectory) async throws -> Void
    ) async throws {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory(label)
            defer { directory.remove() }
            let farm = ProcessFarm(database: database, directory: directory)
            defer { farm.stopAll() }
            try await body(farm, directory)
            farm.stopAll()
        }
    }

    /// Starts a coordinator and returns its port (`port` 0 picks a free one).
    @discardableResult
    package func startCoordinator(
        port: Int = 0,
        leaseSeconds: Int = 6,
        http: String = "127.0.0.1:0",
        extra: [String] = []
    ) async throws -> Int {
        self.started += 1
        let portFile = self.directory.file("coordinator-\(self.started).port")
        let httpPortFile = self.directory.file("coordinator-\(self.started).http-port")
        let process = try ChildProcess(
            [
                "coordinator", "--database-url", self.database.connectionString, "--listen", "127.0.0.1:\(port)",
                "--port-file", portFile, "--secret", self.secret, "--lease-seconds", "\(leaseSeconds)",
                "--heartbeat-seconds", "1", "--reap-seconds", "1", "--http", http, "--http-port-file", httpPortFile,
            ] + extra,
            logPath: self.directory.file("coordinator-\(self.started).log")
        )
        self.coordinators.append(process)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let bound = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let httpText = http == "off" ? "0" : try? String(contentsOfFile: httpPortFile, encoding: .utf8),
                let httpBound = Int(httpText.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                self.coordinatorPorts.append(bound)
                self.httpPorts.append(httpBound)
                return bound
            }
            guard process.process.isRunning else {
                throw CommandFailed(
                    command: "farm coordinator",
                    status: process.process.terminationStatus,
                    standardError: process.log
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailed(
            command: "farm coordinator",
            status: -1,
            standardError: "no port after 60 s: \(process.log)"
        )
    }

    /// Starts `farm agent NAME`, with one slot unless `extra` says otherwise: the scenarios count what one agent
    /// does at a time (an agent that dies on a chunk takes no other task down with it).
    @discardableResult
    package func startAgent(
        _ name: String,
        port: Int,
        secret: String? = nil,
        extra: [String] = []
    ) throws
        -> ChildProcess
    {
        self.started += 1
        self.agents[name]?.stop()
        let agent = try ChildProcess(
            [
                "agent", "--coordinator", "127.0.0.1:\(port)", "--secret", secret ?? self.secret, "--name", name,
                "--work-dir", self.directory.path,
            ] + (extra.contains("--slots") ? [] : ["--slots", "1"]) + extra,
            logPath: self.directory.file("\(name)-\(self.started).log")
        )
        self.agents[name] = agent
        return agent
    }

    /// Submits a job with the CLI and returns its id (the first line `farm submit` prints).
    package func submit(_ source: String, output: String, options: [String]) throws -> Int64 {
        let printed = try run(
            FarmBinary.path,
            ["submit", source, "-o", output, "--database-url", self.database.connectionString] + options
        )
        guard let id = Int64(printed.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces) ?? "") else {
            throw CommandFailed(command: "farm submit", status: 0, standardError: "printed \(printed)")
        }
        return id
    }

    package func withStore<Result: Sendable>(
        _ body: @Sendable (JobStore, PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await withPostgresClient(self.database.url) { client in
            try await body(JobStore(client: client, logger: testLogger), client)
        }
    }

    package func waitForJob(_ jobID: Int64, timeout: Duration = .seconds(180)) async throws -> JobStatus {
        do {
            return try await self.withStore { store, _ in
                try await InProcessFarm.waitForJob(store, jobID, timeout: timeout)
            }
        } catch {
            let diagnosis = try await self.diagnosis()
            FileHandle.standardError.write(
                Data("==== job \(jobID) did not finish; diagnosis:\n\(diagnosis)\n====\n".utf8)
            )
            throw CommandFailed(
                command: "wait for job \(jobID): \(error)",
                status: -1,
                standardError: String(diagnosis.prefix(1500)) + "\n(full diagnosis on standard error)"
            )
        }
    }

    /// Job and task states, and the ends of the coordinators' logs: what a failing fault test prints.
    package func diagnosis() async throws -> String {
        var lines: [String] = []
        try await self.withStore { _, client in
            let rows = try await client.query(
                "SELECT j.id, j.state, t.id, t.kind, t.state, coalesce(t.lease_owner, ''), t.attempts, coalesce(t.last_error, '') FROM jobs j JOIN tasks t ON t.job_id = j.id WHERE t.state <> \(TaskState.done) ORDER BY t.id",
                logger: testLogger
            )
            var found: [String] = []
            for try await (job, jobState, task, kind, state, owner, attempts, error) in rows.decode(
                (Int64, String, Int64, String, String, String, Int, String).self
            ) {
                found.append(
                    "job \(job) \(jobState): task \(task) \(kind) \(state) owner=\(owner) attempts=\(attempts) \(error)"
                )
            }
            return found
        }.forEach { lines.append($0) }
        for (index, coordinator) in self.coordinators.enumerated() {
            lines.append("coordinator \(index + 1) log:\n" + coordinator.log.suffix(8000))
        }
        return lines.joined(separator: "\n")
    }

    /// Waits until `condition` (a query returning one boolean) holds.
    package func waitUntil(_ what: String, timeout: Duration = .seconds(60), _ query: PostgresQuery) async throws {
        try await self.withStore { _, client in
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                for try await holds in try await client.query(query, logger: testLogger).decode(Bool.self) where holds {
                    return
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw CommandFailed(command: "wait", status: -1, standardError: "timed out waiting until \(what)")
        }
    }

    package func stopAll() {
        for agent in self.agents.values { agent.stop() }
        for coordinator in self.coordinators { coordinator.stop() }
    }

    deinit { self.stopAll() }
}

/// SHA-256 of every segment and init segment under an HLS folder, by relative path.
package func segmentHashes(_ folder: String) throws -> [String: String] {
    var hashes: [String: String] = [:]
    let enumerator = FileManager.default.enumerator(atPath: folder)
    while let path = enumerator?.nextObject() as? String {
        guard path.hasSuffix(".m4s") || path.hasSuffix(".ts") || path.hasSuffix("init.mp4"), !path.hasPrefix(".")
        else { continue }
        hashes[path] = sha256Hex(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + path)))
    }
    return hashes
}

/// Each published file's inode and change time under `folder` (the `.staging` folder left out): a file replaced by a
/// rename, even with the same bytes, changes.
package func fileIdentities(_ folder: String) throws -> [String: String] {
    var identities: [String: String] = [:]
    let enumerator = FileManager.default.enumerator(atPath: folder)
    while let path = enumerator?.nextObject() as? String {
        var info = stat()
        guard !path.hasPrefix("."), stat(folder + "/" + path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            continue
        }
        identities[path] = "\(info.st_ino) \(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }
    return identities
}
