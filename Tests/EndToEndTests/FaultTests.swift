import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// Machines dying, freezing and restarting under a running job, with real processes and a real PostgreSQL. Each
/// outcome is either an output byte-identical to a clean run's or a clear error.
@Suite("Faults under a running job", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct FaultTests {
    /// 16 s of 480p cut into four 4 s chunks, two rungs: small enough to be quick, slowed down on the agents so a
    /// chunk takes about three seconds and can be interrupted.
    static let jobOptions = ["--segment-duration", "4", "--rungs", "240p,360p", "--minimum-chunks", "4"]
    static let slow = ["--debug-frame-delay-ms", "30"]

    static func clip(_ directory: TemporaryDirectory) throws -> String {
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 16, width: 854, height: 480)
        return source
    }

    /// A clean run's segment hashes: the reference every faulty run must match byte for byte.
    static func reference(_ farm: ProcessFarm, source: String) async throws -> [String: String] {
        let output = farm.directory.file("clean")
        let job = try farm.submit(source, output: output, options: Self.jobOptions)
        let status = try await farm.waitForJob(job)
        try #require(status.state == .ready, "clean run: \(status.error ?? "")")
        let hashes = try segmentHashes(output)
        let expectedFiles = 2 * 5 + 5  // init and 4 segments for each of two rungs and for the audio
        #expect(hashes.count == expectedFiles, "\(hashes.keys.sorted())")
        return hashes
    }

    /// Keeps both versions of each differing segment (with its rendition's init segment) and the agents' logs in a
    /// folder that outlives the test, and compares their decoded frames: whether the pictures differ or only the
    /// container bytes is the first thing a rare mismatch needs to be understood.
    static func keepEvidence(_ files: [String], clean: String, faulty: String, farm: ProcessFarm) -> String {
        let folder = NSTemporaryDirectory() + "farm-fault-evidence-\(UUID().uuidString.prefix(8))"
        var lines = ["evidence kept in \(folder)"]
        for file in files where file.hasSuffix(".m4s") {
            let rung = (file as NSString).deletingLastPathComponent
            var frames: [String: [String]] = [:]
            for (name, root) in [("clean", clean), ("faulty", faulty)] {
                let joined = "\(folder)/\(name)-\(file.replacingOccurrences(of: "/", with: "-")).mp4"
                try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let initSegment = (try? Data(contentsOf: URL(fileURLWithPath: "\(root)/\(rung)/init.mp4"))) ?? Data()
                let segment = (try? Data(contentsOf: URL(fileURLWithPath: "\(root)/\(file)"))) ?? Data()
                _ = FileManager.default.createFile(atPath: joined, contents: initSegment + segment)
                let md5 =
                    (try? run("ffmpeg", ["-v", "error", "-i", joined, "-map", "0:v", "-f", "framemd5", "-"])) ?? ""
                frames[name] = md5.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
            }
            let (a, b) = (frames["clean"] ?? [], frames["faulty"] ?? [])
            let differingFrames = zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            lines.append(
                "\(file): \(a.count) and \(b.count) decoded frames; frames whose pictures differ: \(differingFrames)"
            )
        }
        for (name, agent) in farm.agents {
            _ = FileManager.default.createFile(atPath: "\(folder)/\(name).log", contents: Data(agent.log.utf8))
        }
        return lines.joined(separator: "\n")
    }

    static func leasedVideoTask(by agent: String) -> PostgresQuery {
        "SELECT EXISTS (SELECT 1 FROM tasks WHERE state = \(TaskState.leased) AND kind = 'video' AND lease_owner = \(agent))"
    }

    static func currentLease(_ farm: ProcessFarm, agent: String) async throws -> (task: Int64, token: Int64) {
        try await farm.withStore { _, client in
            let rows = try await client.query(
                "SELECT id, lease_token FROM tasks WHERE state = \(TaskState.leased) AND kind = 'video' AND lease_owner = \(agent) LIMIT 1",
                logger: testLogger
            )
            for try await (task, token) in rows.decode((Int64, Int64).self) { return (task, token) }
            throw CommandFailed(command: "lease lookup", status: -1, standardError: "\(agent) holds no lease")
        }
    }

    /// One coordinator and two slowed agents on `database`, a clean run for reference, then a second run of the same
    /// job with `fault` injected while it runs: the job must end ready with an output byte-identical to the clean one.
    /// `afterwards` runs last, with the farm still up.
    static func runThroughFault(
        database: TestDatabase,
        leaseSeconds: Int = 4,
        agents: [(name: String, extra: [String])] = [("agent-1", slow), ("agent-2", slow)],
        fault: (ProcessFarm, _ job: Int64) async throws -> Void,
        afterwards: (ProcessFarm, _ output: String) async throws -> Void = { _, _ in }
    ) async throws {
        let directory = try TemporaryDirectory("farm-fault")
        defer { directory.remove() }
        let farm = ProcessFarm(database: database, directory: directory)
        defer { farm.stopAll() }
        let source = try Self.clip(directory)
        let port = try await farm.startCoordinator(leaseSeconds: leaseSeconds)
        for agent in agents { try farm.startAgent(agent.name, port: port, extra: agent.extra) }
        let clean = try await Self.reference(farm, source: source)

        let output = directory.file("faulty")
        let job = try farm.submit(source, output: output, options: Self.jobOptions)
        try await fault(farm, job)
        let status = try await farm.waitForJob(job)
        #expect(status.state == .ready, "\(status.error ?? "")")
        let hashes = try segmentHashes(output)
        let differing = Set(hashes.keys).union(clean.keys).filter { hashes[$0] != clean[$0] }.sorted()
        #expect(hashes == clean, "the output is byte-identical to the clean run's; these files differ: \(differing)")
        if !differing.isEmpty {
            // Which task wrote them, and what the coordinators logged: what a rare mismatch needs to be understood.
            let diagnosis = try await farm.diagnosis()
            let evidence = Self.keepEvidence(differing, clean: directory.file("clean"), faulty: output, farm: farm)
            FileHandle.standardError.write(
                Data("==== output differs from the clean run:\n\(diagnosis)\n\(evidence)\n====\n".utf8)
            )
        }
        try await afterwards(farm, output)
    }

    /// The killed agent's connection closes, and the coordinator gives its task back at once: with a 90 s lease, only
    /// that release (not the lease running out) lets the survivor take the task within 20 s.
    @Test func anAgentKilledMidTaskLosesNothing() async throws {
        try await TestDatabase.with { database in
            try await Self.runThroughFault(
                database: database,
                leaseSeconds: 90,
                agents: [("victim", Self.slow), ("survivor", Self.slow)]
            ) { farm, _ in
                try await farm.waitUntil("the victim works on a chunk", Self.leasedVideoTask(by: "victim"))
                let lease = try await Self.currentLease(farm, agent: "victim")
                farm.agents["victim"]?.signal(SIGKILL)
                let killedAt = ContinuousClock.now
                try await farm.waitUntil(
                    "the victim's task is leased again",
                    timeout: .seconds(20),
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = \(lease.task) AND lease_token > \(lease.token))"
                )
                let recovery = ContinuousClock.now - killedAt
                #expect(recovery < .seconds(20), "leased again after \(recovery)")
                let coordinator = try #require(farm.coordinators.first)
                #expect(coordinator.log.contains("agent disconnected while working; requeueing its task"))
            }
        }
    }

    @Test func aFrozenAgentsLateResultIsRefusedAsStale() async throws {
        try await TestDatabase.with { database in
            var frozenLease: (task: Int64, token: Int64)?
            // The frozen agent ignores the loss of its lease, as a paused or partitioned machine would: the coordinator's
            // fencing alone must keep its result out.
            try await Self.runThroughFault(
                database: database,
                leaseSeconds: 3,
                agents: [("frozen", Self.slow + ["--debug-ignore-lease-loss"]), ("healthy", Self.slow)],
                fault: { farm, _ in
                    try await farm.waitUntil("the frozen agent works on a chunk", Self.leasedVideoTask(by: "frozen"))
                    let lease = try await Self.currentLease(farm, agent: "frozen")
                    frozenLease = lease
                    farm.agents["frozen"]?.signal(SIGSTOP)
                    try await farm.waitUntil(
                        "another agent took the frozen agent's task",
                        "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = \(lease.task) AND lease_token > \(lease.token))"
                    )
                },
                afterwards: { farm, output in
                    let lease = try #require(frozenLease)
                    // Encoding is deterministic, so a stale result published anyway would bring the same bytes: the
                    // files' identities (inode, change time) show whether anything was moved into place.
                    let published = try fileIdentities(output)
                    // The resumed agent heartbeats first (its heartbeat is overdue), is told its lease is lost, ignores
                    // that, finishes and reports: its connection's lease has ended, so the session refuses the result.
                    farm.agents["frozen"]?.signal(SIGCONT)
                    let coordinator = try #require(farm.coordinators.first)
                    let refusal = "refused a result for a lease this connection no longer holds"
                    let deadline = ContinuousClock.now + .seconds(60)
                    while !coordinator.log.contains(refusal), ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    #expect(coordinator.log.contains(refusal), "coordinator log: \(coordinator.log.suffix(3000))")
                    #expect(coordinator.log.contains("heartbeat for a lease no longer held; telling the agent to stop"))
                    try await farm.withStore { _, client in
                        let rows = try await client.query(
                            "SELECT accepted_token, (SELECT count(*) FROM task_results r WHERE r.task_id = t.id) FROM tasks t WHERE id = \(lease.task)",
                            logger: testLogger
                        )
                        for try await (accepted, results) in rows.decode((Int64?, Int64).self) {
                            #expect(
                                accepted != nil && accepted != lease.token,
                                "the kept result is the re-leased agent's"
                            )
                            #expect(results == 1, "one accepted result for the task")
                        }
                    }
                    #expect(try fileIdentities(output) == published, "the stale upload did not touch the output")
                }
            )
        }
    }

    @Test func aCoordinatorKilledAndRestartedFinishesTheJob() async throws {
        try await TestDatabase.with { database in
            try await Self.runThroughFault(database: database) { farm, job in
                try await farm.waitUntil(
                    "some tasks are done and some leased",
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.done)) AND EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.leased))"
                )
                let port = farm.coordinatorPorts[0]
                farm.coordinators[0].signal(SIGKILL)
                try await Task.sleep(for: .milliseconds(500))
                try await farm.startCoordinator(port: port, leaseSeconds: 4)
            }
        }
    }

    @Test func theCoordinatorsDatabaseSessionsTerminatedMidJob() async throws {
        try await TestDatabase.with { database in
            try await Self.runThroughFault(database: database) { farm, job in
                try await farm.waitUntil(
                    "a task is done",
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.done))"
                )
                let name = database.url.database
                try await withPostgresClient(database.url.with(database: "postgres")) { client in
                    let rows = try await client.query(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = \(name) AND pid <> pg_backend_pid()",
                        logger: testLogger
                    )
                    for try await count in rows.decode(Int64.self) {
                        #expect(count > 0, "the coordinator had sessions to end")
                    }
                }
            }
        }
    }

    @Test func postgreSQLRestartedMidJob() async throws {
        // A server of this test's own: restarting the shared test server would disturb other suites.
        let server = try TemporaryDirectory("farm-pg-restart")
        defer { server.remove() }
        let script = FileManager.default.currentDirectoryPath + "/deploy/postgres.sh"
        let port = String(56_000 + Int.random(in: 0..<900))
        // system(3), not Process: the server this starts outlives the script, and Foundation's Process was seen
        // waiting on it here.
        @Sendable func postgres(_ command: String) throws -> String {
            let output = server.file("\(command).out")
            let status = system(
                "bash '\(script)' \(command) '\(server.path)/pg' \(port) > '\(output)' 2>&1 < /dev/null"
            )
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            guard status == 0 else {
                throw CommandFailed(command: "postgres.sh \(command)", status: status, standardError: text)
            }
            return text
        }
        let url = try DatabaseURL(
            try postgres("start").split(separator: "\n").first { $0.hasPrefix("postgres://") }.map(String.init) ?? ""
        )
        defer { _ = try? postgres("stop") }
        try await withPostgresClient(url) { client in
            _ = try await client.query("CREATE DATABASE restart_test", logger: testLogger)
        }
        try await Self.runThroughFault(database: TestDatabase(url: url.with(database: "restart_test"))) { farm, job in
            try await farm.waitUntil(
                "a task is done",
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.done))"
            )
            _ = try postgres("stop")
            try await Task.sleep(for: .seconds(2))
            _ = try postgres("start")
        }
    }

    @Test func twoCoordinatorsShareTheWorkAndAcceptNothingTwice() async throws {
        try await ProcessFarm.with("farm-fault") { farm, directory in
            let source = directory.file("short.mp4")
            try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240)
            let first = try await farm.startCoordinator()
            let second = try await farm.startCoordinator()
            try farm.startAgent("a1", port: first)
            try farm.startAgent("a2", port: first)
            try farm.startAgent("b1", port: second)
            try farm.startAgent("b2", port: second)
            let jobs = try (0..<10).map { index in
                try farm.submit(
                    source,
                    output: directory.file("out-\(index)"),
                    options: ["--segment-duration", "2", "--minimum-chunks", "2"]
                )
            }
            for job in jobs {
                let status = try await farm.waitForJob(job, timeout: .seconds(420))
                #expect(status.state == .ready, "job \(job): \(status.error ?? "")")
            }
            try await farm.withStore { _, client in
                let rows = try await client.query(
                    """
                    SELECT (SELECT count(*) FROM tasks), (SELECT count(*) FROM tasks WHERE state = \(TaskState.done)),
                           (SELECT count(*) FROM task_results), (SELECT count(DISTINCT task_id) FROM task_results),
                           (SELECT count(DISTINCT coordinator) FROM task_results)
                    """,
                    logger: testLogger
                )
                for try await (tasks, done, results, distinct, coordinators) in rows.decode(
                    (Int64, Int64, Int64, Int64, Int64).self
                ) {
                    #expect(done == tasks)
                    #expect(results == tasks, "one accepted result per task, none twice")
                    #expect(distinct == tasks)
                    #expect(
                        coordinators == 2,
                        "both coordinators accepted work; b1: \(farm.agents["b1"]?.log.suffix(1500) ?? "")"
                    )
                }
            }
        }
    }

    /// Heartbeats are 10 s apart here, so an agent that stops within 5 s of the cancel was told by the coordinator's
    /// revoke, not by a refused heartbeat. Afterwards the agent takes the next job as usual.
    @Test func cancellingAJobRevokesItsLeasesOnTheAgentsAtOnce() async throws {
        try await ProcessFarm.with("farm-fault") { farm, directory in
            let source = try Self.clip(directory)
            let port = try await farm.startCoordinator(leaseSeconds: 30, extra: ["--heartbeat-seconds", "10"])
            try farm.startAgent("agent-1", port: port, extra: ["--debug-frame-delay-ms", "100"])
            let job = try farm.submit(source, output: directory.file("cancelled-job"), options: Self.jobOptions)
            try await farm.waitUntil(
                "a task is done and agent-1 encodes a chunk",
                """
                SELECT EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.done))
                   AND EXISTS (SELECT 1 FROM tasks WHERE job_id = \(job) AND state = \(TaskState.leased) AND kind = 'video')
                """
            )
            let published = FileManager.default.enumerator(atPath: directory.file("cancelled-job"))?.allObjects ?? []
            #expect(!published.isEmpty, "the done task published its files")

            let printed = try run(
                FarmBinary.path,
                ["cancel", "\(job)", "--database-url", farm.database.connectionString]
            )
            #expect(printed.contains("job \(job) cancelled"))
            let deadline = ContinuousClock.now + .seconds(5)
            let agentLog = { farm.agents["agent-1"]?.log ?? "" }
            while !agentLog().contains("lease lost; abandoned the task"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(agentLog().contains("the coordinator revoked the task"), "\(agentLog().suffix(1500))")
            #expect(agentLog().contains("lease lost; abandoned the task"), "stopped within 5 s")
            let status = try await farm.withStore { store, _ in try await store.status(jobID: job) }
            #expect(status?.state == .cancelled)
            // What the job had published already is removed; nothing half-made is left in its folder.
            try await farm.waitUntil(
                "the cancelled job's output is cleaned",
                "SELECT cleaned_at IS NOT NULL FROM jobs WHERE id = \(job)"
            )
            let left = FileManager.default.enumerator(atPath: directory.file("cancelled-job"))?.allObjects ?? []
            #expect(left.isEmpty, "\(left)")

            let short = directory.file("short.mp4")
            try Fixtures.makeClip(at: short, seconds: 2, width: 320, height: 240)
            let next = try farm.submit(short, output: directory.file("next"), options: ["--segment-duration", "2"])
            let nextStatus = try await farm.waitForJob(next)
            #expect(nextStatus.state == .ready, "the agent goes on working: \(nextStatus.error ?? "")")
        }
    }

    @Test func aCorruptChunkFailsOnItsFirstAttemptWithItsMessage() async throws {
        try await ProcessFarm.with("farm-fault") { farm, directory in
            let source = directory.file("damaged.mp4")
            try Fixtures.makeClip(at: source, seconds: 8, width: 640, height: 360, audio: false)
            // Damage the middle of the media data; the index (moov) stays readable, so planning succeeds.
            var bytes = try Data(contentsOf: URL(fileURLWithPath: source))
            let start = bytes.count * 6 / 10
            var generator = SystemRandomNumberGenerator()
            for offset in start..<(start + 4000) { bytes[offset] = UInt8.random(in: 0...255, using: &generator) }
            try bytes.write(to: URL(fileURLWithPath: source))
            let port = try await farm.startCoordinator()
            try farm.startAgent("agent-1", port: port)
            let job = try farm.submit(source, output: directory.file("out"), options: ["--segment-duration", "2"])
            let status = try await farm.waitForJob(job)
            #expect(status.state == .failed)
            let error = status.error ?? ""
            #expect(error.hasPrefix("chunk "), "\(error)")
            #expect(error.contains("(attempt 1/5, agent agent-1)"), "failed on the first attempt: \(error)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("out/master.m3u8")))
        }
    }

    @Test func anAgentThatAlwaysDiesOnAChunkFailsTheJobAfterTheAttemptLimit() async throws {
        try await ProcessFarm.with("farm-fault") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 8, width: 320, height: 240)
            let port = try await farm.startCoordinator()
            let crash = ["--debug-crash-on-chunk", "1"]
            try farm.startAgent("crashy", port: port, extra: crash)
            let job = try farm.submit(
                source,
                output: directory.file("out"),
                options: ["--segment-duration", "2", "--max-attempts", "3"]
            )
            // Like a supervisor (systemd), bring the agent back each time it dies.
            let deadline = ContinuousClock.now + .seconds(120)
            var status = try await farm.withStore { store, _ in try await store.status(jobID: job) }
            while status?.state == .running || status?.state == .submitted, ContinuousClock.now < deadline {
                if farm.agents["crashy"]?.process.isRunning == false {
                    try farm.startAgent("crashy", port: port, extra: crash)
                }
                try await Task.sleep(for: .milliseconds(200))
                status = try await farm.withStore { store, _ in try await store.status(jobID: job) }
            }
            #expect(status?.state == .failed)
            let error = status?.error ?? ""
            #expect(error.hasPrefix("chunk 2/4 [2.0 s–4.0 s]: "), "the report names the chunk: \(error)")
            #expect(error.contains("(attempt 3/3, agent crashy)"), "\(error)")
        }
    }
}
