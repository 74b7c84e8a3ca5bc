import AsyncHTTPClient
import FarmCoordinator
import FarmTestSupport
import Foundation
import NIOCore
import Testing

/// A job whose source is a URL on a local HTTP server, followed over Server-Sent Events, its end announced by a
/// signed webhook to a receiver that fails twice: a real `farm coordinator` process with the API, a real agent, a
/// real HTTP file server and receiver (Python's, which checks each signature as docs/api.md says to), and
/// AsyncHTTPClient as the upload service.
@Suite(
    "URL jobs through a farm",
    .serialized,
    .requiresPostgreSQL,
    .farmTimeLimit,
    .enabled(if: PlayerTools.isAvailable, "needs the players' Python: run make test, or set FARM_TEST_PYTHON")
)
struct URLJobsThroughAFarmTests {
    /// One event of a stream.
    struct StreamEvent: Equatable {
        var id: Int64
        var kind: String
        var data: [String: String]
    }

    @Test func aURLJobStreamsItsProgressAndItsWebhookArrivesSignedAfterTwoFailures() async throws {
        try await ProcessFarm.with("farm-url-jobs") { farm, directory in
            let served = directory.file("served")
            try FileManager.default.createDirectory(atPath: served, withIntermediateDirectories: true)
            try run(
                "ffmpeg",
                [
                    "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=8",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=8", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", "\(served)/source.mp4",
                ]
            )
            let secret = "whsec-0123456789abcdef"
            let hooks = directory.file("hooks.jsonl")
            let portFile = directory.file("fixtures.port")
            let fixtures = Process()
            fixtures.executableURL = URL(fileURLWithPath: try PlayersTests.python())
            fixtures.arguments = ["\(PlayersTests.scripts)/http_fixtures.py", served, portFile, hooks, secret, "2"]
            // Its output to a file: an inherited pipe would keep `swift test` waiting. SIGKILL, as the test process
            // blocks SIGTERM in the children it starts.
            fixtures.standardOutput = try FileHandle(
                forWritingTo: URL(fileURLWithPath: Self.touch(directory.file("fixtures.log")))
            )
            fixtures.standardError = fixtures.standardOutput
            try fixtures.run()
            defer {
                kill(fixtures.processIdentifier, SIGKILL)
                fixtures.waitUntilExit()
            }
            let fixturesPort = try await Self.readPort(portFile)

            let port = try await farm.startCoordinator(
                extra: [
                    "--output-root", directory.file("outputs"), "--upload-folder", directory.file("uploads"),
                    "--allow-url-network", "127.0.0.1/32", "--webhook-retry-seconds", "0.5",
                    "--event-heartbeat-seconds", "1",
                ]
            )
            let api = "http://127.0.0.1:\(try #require(farm.httpPorts.last))"
            let key = try run(
                FarmBinary.path,
                ["keys", "create", "--tenant", "acme", "--database-url", farm.database.connectionString]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            defer { _ = http.shutdown() }

            let body = """
                {"source": {"url": "http://127.0.0.1:\(fixturesPort)/source.mp4"}, "rungs": ["240p"],
                 "segmentDuration": 2, "webhook": {"url": "http://127.0.0.1:\(fixturesPort)/hook", "secret": "\(secret)"},
                 "metadata": {"customer": "c-42", "tags": ["a", "b"]}}
                """
            let created = try await Self.post(http, "\(api)/v1/jobs", key: key, body: body, idempotencyKey: "k-1")
            #expect(created.status == 201, "\(created.json)")
            let jobID = try #require(created.json["id"] as? Int64 ?? (created.json["id"] as? Int).map(Int64.init))
            let replay = try await Self.post(http, "\(api)/v1/jobs", key: key, body: body, idempotencyKey: "k-1")
            #expect(replay.status == 201 && replay.replayed, "a retried POST answers with the job the first made")
            #expect((replay.json["id"] as? Int).map(Int64.init) == jobID)
            #expect((created.json["metadata"] as? [String: Any])?["customer"] as? String == "c-42")

            // The stream from the start, while the source is fetched; the agent joins a moment later.
            async let streamed = Self.events(http, "\(api)/v1/jobs/\(jobID)/events", key: key, after: nil)
            try await Task.sleep(for: .seconds(2.5))
            try farm.startAgent("agent-1", port: port, extra: ["--slots", "2"])
            let (events, heartbeats) = try await streamed

            let states = events.filter { $0.kind == "state" }.compactMap { $0.data["state"] }
            #expect(states.first == "submitted" && states.last == "ready", "states: \(states)")
            #expect(
                states.filter { $0 != "stitching" } == ["submitted", "running", "ready"],
                "the states in order, each once: \(states)"
            )
            let percents = events.filter { $0.kind == "progress" }.compactMap {
                $0.data["percent"].flatMap(Double.init)
            }
            #expect(percents.count >= 2 && percents == percents.sorted() && percents.last == 100, "\(percents)")
            let progress = try #require(events.last { $0.kind == "progress" })
            #expect(progress.data["tasksDone"] == progress.data["tasksTotal"] && progress.data["speed"] != nil)
            #expect(events.map(\.id) == events.map(\.id).sorted() && Set(events.map(\.id)).count == events.count)
            #expect(heartbeats >= 1, "a 1 s heartbeat while the job waited for an agent")

            // A reconnect after the second event gets exactly the rest.
            let resumed = try await Self.events(http, "\(api)/v1/jobs/\(jobID)/events", key: key, after: events[1].id)
            #expect(resumed.events == Array(events.dropFirst(2)), "Last-Event-ID resumes without loss or repeat")

            // The webhook: 500, 500, then 200, every attempt signed over the same body.
            let deadline = ContinuousClock.now + .seconds(60)
            var attempts: [[String: Any]] = []
            while ContinuousClock.now < deadline {
                attempts = Self.jsonLines(hooks)
                if attempts.count >= 3 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            try #require(attempts.count == 3, "the receiver got \(attempts.count) attempts")
            #expect(attempts.map { $0["status"] as? Int } == [500, 500, 200])
            #expect(attempts.allSatisfy { $0["valid"] as? Bool == true }, "every signature verifies: \(attempts)")
            #expect(Set(attempts.compactMap { $0["body"] as? String }).count == 1, "every attempt carries one body")
            #expect(attempts.allSatisfy { $0["event"] as? String == "job.ready" })
            let hookBody = try #require((attempts.last?["body"] as? String).map { Data($0.utf8) })
            let payload = try #require(try JSONSerialization.jsonObject(with: hookBody) as? [String: Any])
            #expect(((payload["job"] as? [String: Any])?["state"] as? String) == "ready")

            // Recorded: three attempts, the delivery delivered.
            try await Task.sleep(for: .milliseconds(500))
            let record = try await Self.get(http, "\(api)/v1/jobs/\(jobID)/webhooks", key: key)
            let delivery = try #require((record.json["deliveries"] as? [[String: Any]])?.first, "\(record.json)")
            #expect(delivery["state"] as? String == "delivered")
            #expect((delivery["attempts"] as? [[String: Any]])?.map { $0["status"] as? Int } == [500, 500, 200])

            // A URL that answers 404 fails its job with a reason; the source stayed on the fixture server's side.
            let missing = try await Self.post(
                http,
                "\(api)/v1/jobs",
                key: key,
                body: #"{"source": {"url": "http://127.0.0.1:\#(fixturesPort)/missing.mp4"}}"#,
                idempotencyKey: nil
            )
            let missingID = try #require((missing.json["id"] as? Int).map(Int64.init), "\(missing.json)")
            let failed = try await farm.waitForJob(missingID, timeout: .seconds(60))
            #expect(failed.state == .failed && failed.error?.contains("404") == true, "\(failed.error ?? "")")
        }
    }

    static func touch(_ path: String) -> String {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return path
    }

    static func readPort(_ path: String) async throws -> Int {
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let port = Int(text) { return port }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ConfigurationError("the fixture server wrote no port to \(path)")
    }

    static func jsonLines(_ path: String) -> [[String: Any]] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    struct Answer {
        var status: UInt
        var replayed: Bool
        var json: [String: Any]
    }

    static func post(
        _ http: HTTPClient,
        _ url: String,
        key: String,
        body: String,
        idempotencyKey: String?
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await Self.answer(http.execute(request, timeout: .seconds(30)))
    }

    static func get(_ http: HTTPClient, _ url: String, key: String) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        return try await Self.answer(http.execute(request, timeout: .seconds(30)))
    }

    static func answer(_ response: HTTPClientResponse) async throws -> Answer {
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: response.status.code,
            replayed: response.headers.first(name: "Idempotent-Replayed") == "true",
            json: (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
        )
    }

    /// Reads a job's event stream to its end (at most 5 minutes): its events, and how many heartbeats came.
    static func events(
        _ http: HTTPClient,
        _ url: String,
        key: String,
        after: Int64?
    ) async throws -> (events: [StreamEvent], heartbeats: Int) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let after { request.headers.add(name: "Last-Event-ID", value: "\(after)") }
        let response = try await http.execute(request, timeout: .seconds(300))
        try #require(response.status == .ok && response.headers.first(name: "content-type") == "text/event-stream")
        var text = ""
        for try await piece in response.body { text += String(buffer: piece) }
        var events: [StreamEvent] = []
        var heartbeats = 0
        for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
            var fields: [String: String] = [:]
            for line in block.split(separator: "\n") {
                if line.hasPrefix(": heartbeat") { heartbeats += 1 }
                guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { continue }
                fields[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(
                    in: .whitespaces
                )
            }
            guard let id = fields["id"].flatMap({ Int64($0) }), let kind = fields["event"], let data = fields["data"]
            else { continue }
            let object = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
            events.append(StreamEvent(id: id, kind: kind, data: object.mapValues { "\($0)" }))
        }
        return (events, heartbeats)
    }
}
