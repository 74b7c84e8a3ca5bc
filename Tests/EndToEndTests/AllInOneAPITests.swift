import AsyncHTTPClient
import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// `farm transcode --http`: the all-in-one farm serves the HTTP API beside its own job, with a key printed at start
/// (docs/api.md, "Trying it on one machine"), through a real `farm` process, a real PostgreSQL and AsyncHTTPClient.
@Suite("The all-in-one farm's API", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct AllInOneAPITests {
    /// Waits for the port file and the key line; the process's log says why when it never comes.
    static func startedAPI(_ process: ChildProcess, portFile: String) async throws -> (url: String, key: String) {
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let line = process.log.split(separator: "\n").first(where: { $0.contains("API key of tenant local") }),
                let key = line.split(separator: " ").last
            {
                return ("http://127.0.0.1:\(port)", String(key))
            }
            guard process.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CommandFailed(command: "farm transcode --http", status: -1, standardError: process.log)
    }

    /// Whether the process exits by itself within `limit`; one that does not is killed, so the test goes on.
    static func exits(_ process: ChildProcess, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let exited = !process.process.isRunning
        if !exited { process.stop() }
        return exited
    }

    @Test func theJobOfATranscodeIsFollowedThroughTheAPIItServes() async throws {
        let directory = try TemporaryDirectory("farm-transcode-http")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 6, width: 320, height: 240)
        try await TestDatabase.with { database in
            let portFile = directory.file("http.port")
            let process = try ChildProcess(
                [
                    "transcode", source, "-o", directory.file("out"), "--rungs", "240p", "--agents", "1",
                    "--database-url", database.connectionString, "--http", "127.0.0.1:0", "--http-port-file", portFile,
                    "--output-root", directory.file("api-outputs"), "--log-level", "error",
                ],
                logPath: directory.file("transcode.log")
            )
            defer { process.stop() }
            let (api, key) = try await Self.startedAPI(process, portFile: portFile)
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            defer { _ = http.shutdown() }

            #expect(try await URLJobsThroughAFarmTests.get(http, "\(api)/v1/jobs", key: "farm_wrong").status == 401)
            // The job is submitted once the key is printed: it shows among the local tenant's.
            var jobID: Int64?
            for _ in 0..<100 where jobID == nil {
                let listed = try await URLJobsThroughAFarmTests.get(http, "\(api)/v1/jobs", key: key)
                try #require(listed.status == 200, "\(listed.json)")
                jobID = ((listed.json["jobs"] as? [[String: Any]])?.first?["id"] as? NSNumber)?.int64Value
                if jobID == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let id = try #require(jobID, "no job listed: \(process.log)")
            // Events are rows: the stream from the start has them all, however far the job got meanwhile.
            let (events, _) = try await URLJobsThroughAFarmTests.events(
                http,
                "\(api)/v1/jobs/\(id)/events",
                key: key,
                after: nil
            )
            let states = events.filter { $0.kind == "state" }.compactMap { $0.data["state"] }
            #expect(states.first == "submitted" && states.last == "ready", "\(states)")

            let exited = try await Self.exits(process, within: .seconds(60))
            #expect(exited && process.process.terminationStatus == 0, "\(process.log)")
            #expect(FileManager.default.fileExists(atPath: directory.file("out/master.m3u8")))
        }
    }

    /// With no video, the farm serves the API until SIGTERM, then stops at once and exits 0.
    @Test func withoutAVideoTheFarmServesTheAPIUntilStopped() async throws {
        let directory = try TemporaryDirectory("farm-serve-http")
        defer { directory.remove() }
        try await TestDatabase.with { database in
            let portFile = directory.file("http.port")
            let process = try ChildProcess(
                [
                    "transcode", "--agents", "1", "--database-url", database.connectionString, "--http", "127.0.0.1:0",
                    "--http-port-file", portFile, "--output-root", directory.file("api-outputs"),
                ],
                logPath: directory.file("serve.log")
            )
            defer { process.stop() }
            let (api, key) = try await Self.startedAPI(process, portFile: portFile)
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            defer { _ = http.shutdown() }
            let listed = try await URLJobsThroughAFarmTests.get(http, "\(api)/v1/jobs", key: key)
            #expect(listed.status == 200 && (listed.json["jobs"] as? [Any])?.isEmpty == true, "\(listed.json)")

            process.signal(SIGTERM)
            // The API's background services end with the rest, not after their next wake-up.
            let exited = try await Self.exits(process, within: .seconds(5))
            #expect(exited && process.process.terminationStatus == 0, "\(process.log)")
        }
    }
}
