import FarmCoordinator
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// The farm as operators run it: a coordinator process, agent processes and `farm submit`, over real TCP and a real
/// PostgreSQL, checked with ffprobe.
@Suite(
    "Separate processes, end to end",
    .enabled(if: TestDatabase.isAvailable, "needs PostgreSQL: run make test, or set FARM_TEST_DATABASE_URL")
)
struct SeparateProcessesTests {
    static let secret = "e2e-secret"

    @Test func twoAgentsTranscodeA20SecondClipFrameExactly() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory("farm-e2e")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 20, width: 854, height: 480, frameRate: 25, gop: 50)
        let sourceFrames = try Probe.videoFrameCount(source)
        #expect(sourceFrames == 500)

        let portFile = directory.file("port")
        let coordinator = try ChildProcess(
            [
                "coordinator", "--database-url", database.url.description, "--listen", "127.0.0.1:0", "--port-file",
                portFile,
                "--secret", Self.secret, "--lease-seconds", "10", "--heartbeat-seconds", "2", "--reap-seconds", "1",
            ],
            logPath: directory.file("coordinator.log")
        )
        defer { coordinator.stop() }
        let port = try await Self.waitForPort(portFile, coordinator: coordinator)
        let agents = try ["e2e-agent-1", "e2e-agent-2"].map { name in
            try ChildProcess(
                [
                    "agent", "--coordinator", "127.0.0.1:\(port)", "--secret", Self.secret, "--name", name,
                    "--work-dir", directory.path,
                ],
                logPath: directory.file("\(name).log")
            )
        }
        defer { agents.forEach { $0.stop() } }
        // Both agents are connected before the job arrives, so the planner sees two free slots.
        try await Task.sleep(for: .seconds(1))

        let output = directory.file("hls")
        let submitted = try run(
            "timeout",
            [
                "180", FarmBinary.path, "submit", source, "-o", output, "--database-url", database.url.description,
                "--segment-duration", "4", "--rungs", "240p,360p,480p", "--wait",
            ]
        )
        let jobID = try #require(Int64(submitted.split(separator: "\n").first ?? ""), "submit printed \(submitted)")

        try await withPostgresClient(database.url) { client in
            let chunks = try await client.query(
                "SELECT count(*) FROM chunks WHERE job_id = \(jobID)",
                logger: testLogger
            )
            for try await count in chunks.decode(Int64.self) { #expect(count >= 4) }
            let committers = try await client.query(
                "SELECT accepted_by, count(*) FROM tasks WHERE job_id = \(jobID) AND state = 'done' GROUP BY accepted_by",
                logger: testLogger
            )
            var byAgent: [String: Int64] = [:]
            for try await (agent, count) in committers.decode((String, Int64).self) { byAgent[agent] = count }
            #expect(Set(byAgent.keys) == ["e2e-agent-1", "e2e-agent-2"], "both agents committed work: \(byAgent)")
        }

        #expect(FileManager.default.fileExists(atPath: output + "/master.m3u8"))
        var startsByRung: [String: [Double]] = [:]
        for rung in ["240p", "360p", "480p"] {
            let playlist = "\(output)/\(rung)/playlist.m3u8"
            #expect(try Probe.videoFrameCount(playlist) == sourceFrames, "\(rung) has every source frame")
            let segments = try FileManager.default.contentsOfDirectory(atPath: "\(output)/\(rung)")
                .filter { $0.hasSuffix(".m4s") }.sorted()
            var starts: [Double] = []
            for segment in segments {
                // A segment is playable alone after the init segment: its first frame must be a keyframe.
                var bytes = try Data(contentsOf: URL(fileURLWithPath: "\(output)/\(rung)/init.mp4"))
                bytes += try Data(contentsOf: URL(fileURLWithPath: "\(output)/\(rung)/\(segment)"))
                let joined = directory.file("\(rung)-\(segment).mp4")
                try bytes.write(to: URL(fileURLWithPath: joined))
                let first = try run(
                    "ffprobe",
                    [
                        "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of",
                        "csv=p=0",
                        "-read_intervals", "%+#1", joined,
                    ]
                )
                let fields = first.split(separator: "\n").first?.split(separator: ",") ?? []
                #expect(
                    fields.count >= 2 && fields[1].contains("K"),
                    "\(rung)/\(segment) starts with a keyframe: \(first)"
                )
                starts.append(Double(fields.first ?? "") ?? -1)
            }
            startsByRung[rung] = starts
        }
        #expect(startsByRung["240p"]?.count == 5)
        #expect(startsByRung["240p"] == startsByRung["360p"])
        #expect(startsByRung["240p"] == startsByRung["480p"])

        let sourceAudio = try Probe.streamDuration(source, stream: "a:0")
        let outputAudio = try Probe.streamDuration("\(output)/audio/playlist.m3u8", stream: "a:0")
        #expect(abs(sourceAudio - outputAudio) <= 0.05, "audio lasts \(outputAudio) s, the source's \(sourceAudio) s")
        await database.drop()
    }

    @Test func anAgentWithTheWrongSecretIsRefusedWithAClearError() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory("farm-e2e")
        defer { directory.remove() }
        let portFile = directory.file("port")
        let coordinator = try ChildProcess(
            [
                "coordinator", "--database-url", database.url.description, "--listen", "127.0.0.1:0", "--port-file",
                portFile,
                "--secret", Self.secret,
            ],
            logPath: directory.file("coordinator.log")
        )
        defer { coordinator.stop() }
        let port = try await Self.waitForPort(portFile, coordinator: coordinator)
        let agent = try ChildProcess(
            ["agent", "--coordinator", "127.0.0.1:\(port)", "--secret", "not-the-secret", "--name", "intruder"],
            logPath: directory.file("agent.log")
        )
        let deadline = ContinuousClock.now + .seconds(20)
        while agent.process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!agent.process.isRunning, "the agent stops instead of retrying a wrong secret forever")
        agent.stop()
        #expect(agent.process.terminationStatus != 0)
        #expect(agent.log.contains("authentication failed"), "agent log: \(agent.log)")
        #expect(coordinator.process.isRunning, "the coordinator keeps running")
        await database.drop()
    }

    static func waitForPort(_ portFile: String, coordinator: ChildProcess) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return port
            }
            guard coordinator.process.isRunning else {
                throw CommandFailed(
                    command: "farm coordinator",
                    status: coordinator.process.terminationStatus,
                    standardError: coordinator.log
                )
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailed(
            command: "farm coordinator",
            status: -1,
            standardError: "no port after 60 s: \(coordinator.log)"
        )
    }
}
