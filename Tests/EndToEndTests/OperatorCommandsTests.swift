import FarmAgent
import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// The CLI's options as operators use them, each through real `farm` processes and a real PostgreSQL: the secret
/// from a file or the environment, several slots on one agent, draining on SIGTERM, `submit --wait`, priorities and
/// caps on the job row, and `farm transcode`'s managed PostgreSQL and exit status.
@Suite("Operator commands", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct OperatorCommandsTests {
    static func count(_ farm: ProcessFarm, _ query: PostgresQuery) async throws -> Int64 {
        try await farm.withStore { _, client in
            for try await value in try await client.query(query, logger: testLogger).decode(Int64.self) {
                return value
            }
            return 0
        }
    }

    @Test func agentsReadTheSecretFromAFileOrTheEnvironmentAndAWrongFileIsRefused() async throws {
        try await ProcessFarm.with("farm-secret") { farm, directory in
            let port = try await farm.startCoordinator()
            let good = directory.file("secret")
            try (farm.secret + "\n").write(toFile: good, atomically: true, encoding: .utf8)
            let wrong = directory.file("wrong-secret")
            try "not the secret\n".write(toFile: wrong, atomically: true, encoding: .utf8)
            func agent(_ name: String, _ secret: [String], environment: [String: String] = [:]) throws -> ChildProcess {
                try ChildProcess(
                    ["agent", "--coordinator", "127.0.0.1:\(port)", "--name", name, "--work-dir", directory.path]
                        + secret,
                    logPath: directory.file("\(name).log"),
                    environment: environment
                )
            }
            let fromFile = try agent("from-file", ["--secret-file", good])
            let fromEnvironment = try agent("from-env", [], environment: ["FARM_SECRET": farm.secret])
            let refused = try agent("wrong-file", ["--secret-file", wrong])
            defer { [fromFile, fromEnvironment, refused].forEach { $0.stop() } }
            try await farm.waitUntil(
                "both agents with the right secret joined",
                "SELECT count(*) = 2 FROM agents WHERE name IN ('from-file', 'from-env')"
            )
            let deadline = ContinuousClock.now + .seconds(20)
            while refused.process.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!refused.process.isRunning && refused.process.terminationStatus != 0)
            #expect(refused.log.contains("authentication failed"), "\(refused.log)")
            #expect(try await Self.count(farm, "SELECT count(*) FROM agents WHERE name = 'wrong-file'") == 0)
            #expect(fromFile.process.isRunning && fromEnvironment.process.isRunning)
        }
    }

    /// `--slots 2`: one agent process encodes two tasks at once, each on its own connection.
    @Test func anAgentWithTwoSlotsHoldsTwoLeasesAtOnce() async throws {
        try await ProcessFarm.with("farm-slots") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 12, width: 320, height: 240)
            let port = try await farm.startCoordinator(leaseSeconds: 10)
            try farm.startAgent("two-slots", port: port, extra: ["--slots", "2", "--debug-frame-delay-ms", "20"])
            let job = try farm.submit(
                source,
                output: directory.file("out"),
                options: ["--segment-duration", "2", "--rungs", "240p", "--minimum-chunks", "4"]
            )
            try await farm.waitUntil(
                "the agent holds two leases",
                "SELECT count(*) = 2 FROM tasks WHERE state = \(TaskState.leased) AND lease_owner = 'two-slots'"
            )
            let status = try await farm.waitForJob(job)
            #expect(status.state == .ready, "\(status.error ?? "")")
        }
    }

    /// SIGTERM drains an agent: the task in hand is finished and accepted, no other is taken, and it exits 0.
    @Test func sigtermFinishesTheTaskInHandTakesNoOtherAndExitsZero() async throws {
        try await ProcessFarm.with("farm-drain") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 12, width: 320, height: 240)
            let port = try await farm.startCoordinator(leaseSeconds: 10)
            let draining = try farm.startAgent("draining", port: port, extra: ["--debug-frame-delay-ms", "40"])
            let job = try farm.submit(
                source,
                output: directory.file("out"),
                options: ["--segment-duration", "2", "--rungs", "240p", "--minimum-chunks", "4"]
            )
            try await farm.waitUntil(
                "the agent works on a chunk",
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE state = \(TaskState.leased) AND kind = 'video' AND lease_owner = 'draining')"
            )
            let inHand = try await Self.count(
                farm,
                "SELECT id FROM tasks WHERE state = \(TaskState.leased) AND kind = 'video' AND lease_owner = 'draining' LIMIT 1"
            )
            let leasedBefore = try await Self.count(
                farm,
                "SELECT count(*) FROM tasks WHERE lease_owner = 'draining'"
            )
            draining.signal(SIGTERM)
            let deadline = ContinuousClock.now + .seconds(60)
            while draining.process.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!draining.process.isRunning, "the agent exits once its task is done")
            #expect(draining.process.terminationStatus == 0, "\(draining.log.suffix(2000))")
            #expect(
                try await Self.count(
                    farm,
                    "SELECT count(*) FROM tasks WHERE id = \(inHand) AND state = \(TaskState.done) AND accepted_by = 'draining'"
                ) == 1,
                "the task in hand was finished and accepted"
            )
            #expect(
                try await Self.count(farm, "SELECT count(*) FROM tasks WHERE lease_owner = 'draining'")
                    == leasedBefore,
                "no other task was leased to the draining agent"
            )
            // Another agent finishes the job.
            try farm.startAgent("after", port: port)
            let status = try await farm.waitForJob(job)
            #expect(status.state == .ready, "\(status.error ?? "")")
        }
    }

    @Test func submitWaitExitsZeroWhenReadyAndOneWithTheErrorWhenTheJobFails() async throws {
        try await ProcessFarm.with("farm-wait") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 2, width: 320, height: 240)
            let garbage = directory.file("garbage.mp4")
            try Fixtures.makeGarbage(at: garbage)
            let port = try await farm.startCoordinator()
            try farm.startAgent("waiter", port: port)
            let url = ["--database-url", farm.database.connectionString]
            let printed = try run(
                FarmBinary.path,
                ["submit", source, "-o", directory.file("good"), "--wait", "--rungs", "240p"] + url
            )
            let job = try #require(Int64(printed.split(separator: "\n").first ?? ""))
            #expect(try await farm.waitForJob(job).state == .ready, "--wait returned once the job was ready")
            #expect {
                try run(FarmBinary.path, ["submit", garbage, "-o", directory.file("bad"), "--wait"] + url)
            } throws: { error in
                guard let failed = error as? CommandFailed else { return false }
                return failed.status == 1 && failed.standardError.contains("failed: ")
                    && failed.standardError.contains("garbage.mp4")
            }
        }
    }

    @Test func priorityAndTheInFlightCapReachTheJob() async throws {
        try await ProcessFarm.with("farm-options") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 2, width: 320, height: 240)
            let job = try farm.submit(
                source,
                output: directory.file("out"),
                options: ["--priority", "7", "--max-in-flight", "3"]
            )
            #expect(try await Self.count(farm, "SELECT priority::bigint FROM jobs WHERE id = \(job)") == 7)
            #expect(try await Self.count(farm, "SELECT max_in_flight::bigint FROM jobs WHERE id = \(job)") == 3)
        }
    }

    /// `make run`'s path: no --database-url, so `farm transcode` creates, starts and afterwards stops its own
    /// PostgreSQL under FARM_STATE_DIR; no --agents, so it runs one agent per core and says so.
    @Test func transcodeManagesItsOwnPostgreSQLAndStopsIt() async throws {
        let directory = try TemporaryDirectory("farm-managed")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 2, width: 320, height: 240)
        let state = directory.file("state")
        // Whatever happens, no server outlives the test (a failure below may mean it was left running).
        defer { LocalPostgres(stateDirectory: state + "/postgres").stop() }
        let (status, printed) = runThroughShell(
            [
                "timeout", "-k", "10", "240", FarmBinary.path, "transcode", source, "-o", directory.file("out"),
                "--rungs", "240p", "--log-level", "error",
            ],
            environment: ["FARM_STATE_DIR": state]
        )
        #expect(status == 0 && printed.contains("master.m3u8"), "exit \(status): \(printed)")
        let advice = SlotAdvice.forThisMachine()
        #expect(printed.contains("using \(advice.slots) local agents: \(advice.reason)"), "\(printed)")
        #expect(FileManager.default.fileExists(atPath: directory.file("out/master.m3u8")))
        #expect(FileManager.default.fileExists(atPath: state + "/postgres/data/PG_VERSION"), "the managed database")
        #expect(
            !FileManager.default.fileExists(atPath: state + "/postgres/data/postmaster.pid"),
            "the managed server was stopped"
        )
    }

    @Test func transcodeOfABrokenFileExitsOneNamingTheCause() async throws {
        let directory = try TemporaryDirectory("farm-broken")
        defer { directory.remove() }
        let garbage = directory.file("garbage.mp4")
        try Fixtures.makeGarbage(at: garbage)
        await #expect {
            try await FarmBinary.transcode(garbage, into: directory.file("out"), options: ["--agents", "1"])
        } throws: { error in
            guard let failed = error as? CommandFailed else { return false }
            let error = failed.standardError
            return failed.status == 1 && error.contains("farm: transcode failed: job 1 failed: ")
                && error.contains("garbage.mp4")
        }
    }
}
