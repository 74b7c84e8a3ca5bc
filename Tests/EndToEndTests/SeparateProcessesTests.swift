import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmTestSupport
import FarmVerify
import Foundation
import PostgresNIO
import Testing

/// The farm as operators run it: a coordinator process, agent processes and `farm submit`, over real TCP and a real
/// PostgreSQL, checked with ffprobe.
@Suite("Separate processes, end to end", .requiresPostgreSQL, .farmTimeLimit)
struct SeparateProcessesTests {
    @Test func twoAgentsTranscodeA20SecondClipFrameExactly() async throws {
        try await ProcessFarm.with("farm-e2e") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 20, width: 854, height: 480, frameRate: 25, gop: 50)
            #expect(try Probe.videoFrameCount(source) == 500)

            let port = try await farm.startCoordinator(leaseSeconds: 10)
            for name in ["e2e-agent-1", "e2e-agent-2"] { try farm.startAgent(name, port: port) }
            // Both agents are connected before the job arrives, so both get chunks.
            try await Task.sleep(for: .seconds(1))

            let output = directory.file("hls")
            let jobID = try farm.submit(
                source,
                output: output,
                options: ["--segment-duration", "4", "--rungs", "240p,360p,480p"]
            )
            // Waited for under a time limit, with the jobs' and coordinators' state printed if it runs out.
            let status = try await farm.waitForJob(jobID)
            try #require(status.state == .ready, "\(status.error ?? "")")
            try await farm.withStore { _, client in
                let chunks = try await client.query(
                    "SELECT count(*) FROM chunks WHERE job_id = \(jobID)",
                    logger: testLogger
                )
                for try await count in chunks.decode(Int64.self) { #expect(count >= 4) }
                let committers = try await client.query(
                    "SELECT accepted_by, count(*) FROM tasks WHERE job_id = \(jobID) AND state = \(TaskState.done) GROUP BY accepted_by",
                    logger: testLogger
                )
                var byAgent: [String: Int64] = [:]
                for try await (agent, count) in committers.decode((String, Int64).self) { byAgent[agent] = count }
                #expect(Set(byAgent.keys) == ["e2e-agent-1", "e2e-agent-2"], "both agents committed work: \(byAgent)")
            }

            // Every source frame in every rung, IDR-started segments aligned across rungs, audio in sync.
            let report = OutputVerifier.verify(
                source: source,
                hlsDirectory: output,
                options: .init(measureQuality: false)
            )
            #expect(report.failures == [], "\(report.text)")
            #expect(report.rungs.map(\.name) == ["480p", "360p", "240p"])
            #expect(report.rungs.allSatisfy { $0.frames == 500 && $0.segments == 5 }, "\(report.text)")
        }
    }

    @Test func statusAndCancelOfAnUnknownJobSayWhatToCheck() async throws {
        try await ProcessFarm.with("farm-e2e") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 2, width: 320, height: 240)
            // No coordinator: the job stays submitted, and can be cancelled once.
            let job = try farm.submit(source, output: directory.file("out"), options: [])
            let url = ["--database-url", farm.database.connectionString]
            #expect(try run(FarmBinary.path, ["status", "\(job)"] + url).hasPrefix("job \(job): submitted"))
            #expect(try run(FarmBinary.path, ["cancel", "\(job)"] + url) == "job \(job) cancelled\n")
            for (command, message) in [
                ("cancel", "job \(job) does not exist or has already ended; `farm status \(job)` shows its state"),
                ("status", "job 424242 does not exist; check the id `farm submit` printed"),
            ] {
                let id = command == "cancel" ? "\(job)" : "424242"
                #expect {
                    try run(FarmBinary.path, [command, id] + url)
                } throws: { error in
                    guard let failed = error as? CommandFailed else { return false }
                    return failed.status == 1 && failed.standardError == "Error: \(message)\n"
                }
            }
        }
    }

    @Test func anAgentWithTheWrongSecretIsRefusedWithAClearError() async throws {
        try await ProcessFarm.with("farm-e2e") { farm, _ in
            let port = try await farm.startCoordinator()
            let agent = try farm.startAgent("intruder", port: port, secret: "not-the-secret")
            let deadline = ContinuousClock.now + .seconds(20)
            while agent.process.isRunning, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(!agent.process.isRunning, "the agent stops instead of retrying a wrong secret forever")
            agent.stop()
            #expect(agent.process.terminationStatus != 0)
            #expect(agent.log.contains("authentication failed"), "agent log: \(agent.log)")
            #expect(farm.coordinators.first?.process.isRunning == true, "the coordinator keeps running")
        }
    }
}
