import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// `farm agents` and `farm agents drain` through real processes (a coordinator, two agents, the CLI) and a real
/// PostgreSQL: what each agent is and does, a name already connected refused, and a drain asked from another
/// process that loses no work.
@Suite("Agents seen and drained", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct AgentsCommandTests {
    static func agents(_ farm: ProcessFarm) throws -> String {
        try run(FarmBinary.path, ["agents", "--database-url", farm.database.connectionString])
    }

    /// The row of `name` in `farm agents`' table.
    static func row(_ table: String, _ name: String) -> String {
        table.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? ""
    }

    @Test func aDrainAskedFromAnotherMachineFinishesTheTasksInHandAndTheJobEndsOnTheOtherAgent() async throws {
        try await ProcessFarm.with("farm-agents-drain") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 12, width: 320, height: 240)
            let port = try await farm.startCoordinator(leaseSeconds: 6)
            let drained = try farm.startAgent("drained", port: port, extra: ["--debug-frame-delay-ms", "40"])
            let other = try farm.startAgent("other", port: port, extra: ["--debug-frame-delay-ms", "10"])
            try await farm.waitUntil(
                "both agents registered",
                "SELECT count(*) = 2 FROM agents WHERE state = \(AgentState.active)"
            )

            let listed = try Self.agents(farm)
            for name in ["drained", "other"] {
                let row = Self.row(listed, name)
                #expect(row.contains("active") && row.contains("libx264") && row.contains("idle"), "\(listed)")
                // These machines have no GPU: the agent's start-up check says why, and `farm agents` shows it.
                #expect(row.contains("no VA-API device: "), "\(listed)")
            }

            // A second process with a connected agent's name is refused, saying so, and exits 1.
            let impostor = try ChildProcess(
                [
                    "agent", "--coordinator", "127.0.0.1:\(port)", "--secret", farm.secret, "--name", "drained",
                    "--work-dir", directory.path,
                ],
                logPath: directory.file("impostor.log")
            )
            let deadline = ContinuousClock.now + .seconds(30)
            while impostor.process.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(!impostor.process.isRunning && impostor.process.terminationStatus == 1, "\(impostor.log)")
            #expect(impostor.log.contains("an agent named drained is already connected"), "\(impostor.log)")

            let job = try farm.submit(
                source,
                output: directory.file("out"),
                options: ["--segment-duration", "2", "--rungs", "240p", "--minimum-chunks", "6"]
            )
            try await farm.waitUntil(
                "the drained agent works on a chunk",
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE state = \(TaskState.leased) AND kind = 'video' AND lease_owner = 'drained')"
            )
            let doing = Self.row(try Self.agents(farm), "drained")
            #expect(doing.contains("job \(job) task "), "\(doing)")
            let inHand = try await OperatorCommandsTests.count(
                farm,
                "SELECT id FROM tasks WHERE state = \(TaskState.leased) AND lease_owner = 'drained' LIMIT 1"
            )

            let asked = try run(
                FarmBinary.path,
                ["agents", "drain", "drained", "--database-url", farm.database.connectionString]
            )
            #expect(asked.contains("agent drained is draining"), "\(asked)")
            let stopping = ContinuousClock.now + .seconds(90)
            while drained.process.isRunning, ContinuousClock.now < stopping {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!drained.process.isRunning, "the agent exits once its tasks are done")
            #expect(drained.process.terminationStatus == 0, "\(drained.log.suffix(2000))")

            let status = try await farm.waitForJob(job)
            #expect(status.state == .ready, "\(status.error ?? "")")
            #expect(
                try await OperatorCommandsTests.count(
                    farm,
                    "SELECT count(*) FROM tasks WHERE id = \(inHand) AND state = \(TaskState.done) AND accepted_by = 'drained'"
                ) == 1,
                "the task in hand was finished and accepted"
            )
            #expect(
                try await OperatorCommandsTests.count(
                    farm,
                    """
                    SELECT count(*) FROM tasks t, agents a
                    WHERE a.name = 'drained' AND t.lease_owner = 'drained' AND t.leased_at > a.drain_requested_at
                    """
                ) == 0,
                "no task was leased to the agent once it was asked to drain"
            )
            #expect(
                try await OperatorCommandsTests.count(
                    farm,
                    "SELECT count(*) FROM tasks WHERE job_id = \(job) AND (attempts <> 1 OR accepted_by IS NULL)"
                ) == 0,
                "every task was encoded once: no lease expired, none was given back"
            )
            #expect(
                try await OperatorCommandsTests.count(
                    farm,
                    "SELECT count(*) FROM tasks WHERE job_id = \(job) AND accepted_by = 'other'"
                ) > 0,
                "the other agent finished the job"
            )
            let after = try Self.agents(farm)
            #expect(Self.row(after, "drained").contains("gone"), "\(after)")
            #expect(Self.row(after, "other").contains("×"), "its speed over its results: \(after)")
            _ = other
        }
    }
}
