import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite("Deterministic output", .requiresPostgreSQL, .farmTimeLimit)
struct DeterminismTests {
    /// The same job encoded by one agent, then by three: every init segment and segment is byte-identical. The plan
    /// depends on the job only (two chunks here, whether one agent is connected or three), and a task's settings
    /// (one encoder thread included) fix its bytes. With `--container ts`, the MPEG-TS segments the stitcher remuxes
    /// are byte-identical too.
    @Test(arguments: ["fmp4", "ts"])
    func oneAgentAndThreeAgentsMakeByteIdenticalSegments(container: String) async throws {
        try await ProcessFarm.with("farm-determinism") { farm, directory in
            let source = directory.file("clip.mp4")
            try Fixtures.makeClip(at: source, seconds: 12, width: 640, height: 360)
            let options = [
                "--segment-duration", "2", "--rungs", "240p,360p", "--minimum-chunks", "2", "--container", container,
            ]
            let port = try await farm.startCoordinator()

            try farm.startAgent("solo", port: port)
            let alone = try farm.submit(source, output: directory.file("one-agent"), options: options)
            let aloneStatus = try await farm.waitForJob(alone)
            try #require(aloneStatus.state == .ready, "\(aloneStatus.error ?? "")")

            try farm.startAgent("second", port: port)
            try farm.startAgent("third", port: port)
            let shared = try farm.submit(source, output: directory.file("three-agents"), options: options)
            let sharedStatus = try await farm.waitForJob(shared)
            try #require(sharedStatus.state == .ready, "\(sharedStatus.error ?? "")")

            let agents = try await farm.withStore { _, client in
                var names: [String] = []
                for try await name in try await client.query(
                    "SELECT DISTINCT accepted_by FROM tasks WHERE job_id = \(shared) ORDER BY 1",
                    logger: testLogger
                ).decode(String.self) {
                    names.append(name)
                }
                return names
            }
            #expect(agents.count >= 2, "the second run was shared between agents: \(agents)")
            let one = try segmentHashes(directory.file("one-agent"))
            let three = try segmentHashes(directory.file("three-agents"))
            // Six 2 s segments for each rung and the audio, beside their init segments.
            let segments = one.keys.filter { $0.hasSuffix(container == "ts" ? ".ts" : ".m4s") }
            #expect(segments.count == 3 * 6, "\(one.keys.sorted())")
            #expect(one.keys.filter { $0.hasSuffix("/init.mp4") }.count == 3)
            #expect(one == three)
        }
    }
}
