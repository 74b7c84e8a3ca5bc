import FarmAPI
import FarmCoordinator
import FarmTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// The API over real HTTP on loopback against a real PostgreSQL: keys, tenants, jobs, problems.
@Suite("HTTP API", .requiresPostgreSQL)
struct APIServerTests {
    struct Server {
        var client: any TestClientProtocol
        var keys: APIKeyStore
        var sources: String
        /// The upload folder.
        var uploads: String
        var store: JobStore

        func request(
            _ method: HTTPRequest.Method,
            _ uri: String,
            key: APIKey? = nil,
            json: String? = nil,
            headers extra: HTTPFields = [:]
        ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: [String: Any]) {
            var headers = extra
            if let key { headers[.authorization] = "Bearer \(key.text)" }
            if json != nil { headers[.contentType] = "application/json" }
            let response = try await self.client.execute(
                uri: uri,
                method: method,
                headers: headers,
                body: json.map { ByteBuffer(string: $0) }
            )
            let object = (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any]
            return (response.status, response.headers, object ?? [:])
        }
    }

    /// A coordinator's API (no planner runs: jobs stay submitted) on a fresh database with a source folder.
    static func withServer(
        maximumUploadSize: Int64 = 100 << 30,
        uploadLifetime: Double = 24 * 3600,
        eventHeartbeat: Duration = .seconds(15),
        playbackSigner: PlaybackSigner? = nil,
        keyLimits: APIKeyLimits = .standard,
        _ body: @Sendable (Server) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory("farm-api")
        defer { directory.remove() }
        let sources = directory.file("sources")
        try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                // The streams wake on NOTIFY, as in a coordinator.
                let signals = APISignals()
                let listener = Task {
                    await APINotificationListener(client: client, signals: signals, logger: testLogger).run()
                }
                defer { listener.cancel() }
                let application = try APIApplication.application(
                    client: client,
                    configuration: APIConfiguration(
                        host: "127.0.0.1",
                        port: 0,
                        sourceFolders: [sources],
                        outputRoot: directory.file("outputs"),
                        uploadFolder: directory.file("uploads"),
                        maximumUploadSize: maximumUploadSize,
                        uploadLifetime: uploadLifetime,
                        eventHeartbeat: eventHeartbeat,
                        playbackSigner: playbackSigner,
                        keyLimits: keyLimits
                    ),
                    signals: signals,
                    logger: testLogger
                )
                try await application.test(.live) { testClient in
                    try await body(
                        Server(
                            client: testClient,
                            keys: APIKeyStore(client: client, logger: testLogger),
                            sources: sources,
                            uploads: directory.file("uploads"),
                            store: JobStore(client: client, logger: testLogger)
                        )
                    )
                }
            }
        }
    }

    @Test func healthReadinessAndTheDocumentNeedNoKey() async throws {
        try await Self.withServer { server in
            #expect(try await server.request(.get, "/healthz").body["status"] as? String == "ok")
            let ready = try await server.request(.get, "/readyz")
            #expect(ready.status == .ok && ready.body["status"] as? String == "ready")
            let document = try await server.request(.get, "/openapi.json")
            #expect(document.status == .ok && document.body["openapi"] as? String == "3.1.0")
        }
    }

    @Test func aRequestWithoutALiveKeyIsRefusedWithAProblemThatSaysWhatToDo() async throws {
        try await Self.withServer { server in
            let missing = try await server.request(.get, "/v1/jobs")
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.contentType] == "application/problem+json")
            #expect(missing.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            #expect((missing.body["detail"] as? String)?.contains("farm keys create") == true)
            #expect(try await server.request(.get, "/v1/jobs", key: APIKey.generate()).status == .unauthorized)

            let (_, key) = try await server.keys.create(tenant: "acme")
            #expect(try await server.request(.get, "/v1/jobs", key: key).status == .ok)
            #expect(try await server.keys.revoke(key.prefix))
            let revoked = try await server.request(.get, "/v1/jobs", key: key)
            #expect(revoked.status == .unauthorized && (revoked.body["detail"] as? String)?.contains("revoked") == true)
        }
    }

    @Test func aTenantSeesItsOwnJobsOnlyAndPagesThroughThem() async throws {
        try await Self.withServer { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, other) = try await server.keys.create(tenant: "other")
            let source = server.sources + "/clip.mp4"
            try Data("not decoded: no planner runs here".utf8).write(to: URL(fileURLWithPath: source))

            var ids: [Int64] = []
            for priority in 0..<5 {
                let created = try await server.request(
                    .post,
                    "/v1/jobs",
                    key: acme,
                    json: #"{"source": {"path": "\#(source)"}, "rungs": ["240p"], "priority": \#(priority)}"#
                )
                try #require(created.status == .created, "\(created.body)")
                let id = try #require(created.body["id"] as? Int64 ?? (created.body["id"] as? Int).map(Int64.init))
                #expect(created.headers[.location] == "/v1/jobs/\(id)")
                #expect(created.body["state"] as? String == "submitted")
                ids.append(id)
            }
            let shown = try await server.request(.get, "/v1/jobs/\(ids[0])", key: acme)
            #expect(shown.status == .ok && shown.body["priority"] as? Int == 0)
            // Another tenant's job does not exist for it, nor does a job that was never made.
            let hidden = try await server.request(.get, "/v1/jobs/\(ids[0])", key: other)
            #expect(hidden.status == .notFound && hidden.headers[.contentType] == "application/problem+json")
            #expect(try await server.request(.get, "/v1/jobs/999999", key: acme).status == .notFound)
            #expect(try await server.request(.post, "/v1/jobs/\(ids[0])/cancel", key: other).status == .notFound)
            #expect(((try await server.request(.get, "/v1/jobs", key: other)).body["jobs"] as? [Any])?.isEmpty == true)

            // Newest first, two at a time, the cursor carrying on where the page ended.
            var seen: [Int64] = []
            var uri = "/v1/jobs?limit=2"
            for _ in 0..<4 {
                let page = try await server.request(.get, uri, key: acme)
                try #require(page.status == .ok, "\(page.body)")
                let jobs = try #require(page.body["jobs"] as? [[String: Any]])
                seen += jobs.compactMap { ($0["id"] as? Int).map(Int64.init) }
                guard let cursor = page.body["nextCursor"] as? String else { break }
                uri = "/v1/jobs?limit=2&cursor=\(cursor)"
            }
            #expect(seen == ids.reversed())

            let cancelled = try await server.request(.post, "/v1/jobs/\(ids[1])/cancel", key: acme)
            #expect(cancelled.status == .ok && cancelled.body["state"] as? String == "cancelled")
            let again = try await server.request(.post, "/v1/jobs/\(ids[1])/cancel", key: acme)
            #expect(again.status == .ok, "cancelling a cancelled job again is not an error")
            let onlyCancelled = try await server.request(.get, "/v1/jobs?state=cancelled", key: acme)
            #expect((onlyCancelled.body["jobs"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [Int(ids[1])])
        }
    }

    static let idempotencyKey = HTTPFields.Element.Name("Idempotency-Key")!
    static let replayed = HTTPFields.Element.Name("Idempotent-Replayed")!

    static func id(_ body: [String: Any]) -> Int64? {
        body["id"] as? Int64 ?? (body["id"] as? Int).map(Int64.init)
    }

    /// A client whose answer was lost sends its POST again with the same Idempotency-Key: one job, whatever the
    /// body's key order, and at once from many connections; the same key with another body is a 409 naming the job.
    @Test func aSubmitRetriedWithItsIdempotencyKeyMakesOneJob() async throws {
        try await Self.withServer { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, other) = try await server.keys.create(tenant: "other")
            let source = server.sources + "/clip.mp4"
            try Data("not decoded: no planner runs here".utf8).write(to: URL(fileURLWithPath: source))
            let body = #"{"source": {"path": "\#(source)"}, "rungs": ["240p"]}"#
            let key: HTTPFields = [Self.idempotencyKey: "upload-7f3a"]

            let first = try await server.request(.post, "/v1/jobs", key: acme, json: body, headers: key)
            try #require(first.status == .created, "\(first.body)")
            #expect(first.headers[Self.replayed] == nil)
            let id = try #require(Self.id(first.body))
            let reordered = #"{"rungs":["240p"],"source":{"path":"\#(source)"}}"#
            let again = try await server.request(.post, "/v1/jobs", key: acme, json: reordered, headers: key)
            #expect(again.status == .created && Self.id(again.body) == id, "\(again.body)")
            #expect(again.headers[Self.replayed] == "true" && again.headers[.location] == "/v1/jobs/\(id)")

            // Eight at once with a new key: the database's unique index lets one make the job.
            let burst: HTTPFields = [Self.idempotencyKey: "upload-burst"]
            let ids = try await withThrowingTaskGroup(of: Int64?.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let answer = try await server.request(.post, "/v1/jobs", key: acme, json: body, headers: burst)
                        return answer.status == .created ? Self.id(answer.body) : nil
                    }
                }
                return try await group.reduce(into: [Int64?]()) { $0.append($1) }
            }
            #expect(ids.count == 8 && ids.allSatisfy { $0 != nil } && Set(ids).count == 1, "\(ids)")

            let changed = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"source": {"path": "\#(source)"}, "rungs": ["240p"], "priority": 5}"#,
                headers: key
            )
            #expect(changed.status == .conflict, "\(changed.body)")
            #expect((changed.body["detail"] as? String)?.contains("was used for job \(id)") == true, "\(changed.body)")
            // Keys are the tenant's own: another tenant's same key makes its own job.
            let theirs = try await server.request(.post, "/v1/jobs", key: other, json: body, headers: key)
            #expect(theirs.status == .created && Self.id(theirs.body) != id && theirs.headers[Self.replayed] == nil)

            let listed = try await server.request(.get, "/v1/jobs", key: acme)
            #expect((listed.body["jobs"] as? [Any])?.count == 2, "\(listed.body)")
            let bad = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: body,
                headers: [Self.idempotencyKey: String(repeating: "k", count: 256)]
            )
            #expect(bad.status == .badRequest && (bad.body["detail"] as? String)?.contains("1 to 255") == true)
        }
    }

    /// A cancelled job is run again as a new job that names it; a job that has not ended is not, with a 409 that
    /// says what to do; another tenant's job is a 404.
    @Test func aCancelledJobIsRetriedAsANewJob() async throws {
        try await Self.withServer { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, other) = try await server.keys.create(tenant: "other")
            let source = server.sources + "/clip.mp4"
            try Data("not decoded: no planner runs here".utf8).write(to: URL(fileURLWithPath: source))
            let created = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"source": {"path": "\#(source)"}, "rungs": ["240p"], "priority": 7}"#
            )
            let id = try #require(Self.id(created.body))
            let early = try await server.request(.post, "/v1/jobs/\(id)/retry", key: acme)
            #expect(early.status == .conflict && (early.body["detail"] as? String)?.contains("cancel it first") == true)
            #expect(try await server.request(.post, "/v1/jobs/\(id)/cancel", key: acme).status == .ok)
            #expect(try await server.request(.post, "/v1/jobs/\(id)/retry", key: other).status == .notFound)

            let key: HTTPFields = [Self.idempotencyKey: "retry-once"]
            let retried = try await server.request(.post, "/v1/jobs/\(id)/retry", key: acme, headers: key)
            try #require(retried.status == .created, "\(retried.body)")
            let newID = try #require(Self.id(retried.body))
            #expect(newID != id && retried.headers[.location] == "/v1/jobs/\(newID)")
            #expect(retried.body["retryOf"] as? Int == Int(id) && retried.body["priority"] as? Int == 7)
            #expect(retried.body["state"] as? String == "submitted")
            let again = try await server.request(.post, "/v1/jobs/\(id)/retry", key: acme, headers: key)
            #expect(Self.id(again.body) == newID && again.headers[Self.replayed] == "true")
            let shown = try await server.request(.get, "/v1/jobs/\(newID)", key: acme)
            #expect(shown.body["retryOf"] as? Int == Int(id))
        }
    }

    @Test(
        arguments: [
            ("not json", 400, "JSON object"),
            (#"{"source": {"path": "/x"}, "crff": 20}"#, 400, "unknown field crff"),
            (#"{"rungs": ["240p"]}"#, 400, "exactly one of source"),
            (#"{"source": {"path": "/etc/passwd"}}"#, 422, "outside the folders"),
            (#"{"source": {"path": "SOURCES/clip.mp4"}, "preset": "warp"}"#, 422, "preset warp"),
            (#"{"source": {"path": "SOURCES/clip.mp4"}, "rungs": ["999p"]}"#, 422, "unknown rung 999p"),
            (#"{"source": {"path": "SOURCES/clip.mp4"}, "crf": "high"}"#, 400, "crf has the wrong type"),
        ]
    )
    func aBadJobRequestIsAProblemNamingWhatIsWrong(body: String, status: Int, detail: String) async throws {
        try await Self.withServer { server in
            let (_, key) = try await server.keys.create(tenant: "acme")
            try Data("clip".utf8).write(to: URL(fileURLWithPath: server.sources + "/clip.mp4"))
            let json = body.replacingOccurrences(of: "SOURCES", with: server.sources)
            let response = try await server.request(.post, "/v1/jobs", key: key, json: json)
            #expect(response.status.code == status, "\(response.body)")
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect((response.body["detail"] as? String)?.contains(detail) == true, "\(response.body)")
            #expect(((try await server.request(.get, "/v1/jobs", key: key)).body["jobs"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func anUnknownRouteAndAnOversizedBodyAreProblemsToo() async throws {
        try await Self.withServer { server in
            let (_, key) = try await server.keys.create(tenant: "acme")
            let unknown = try await server.request(.get, "/v2/nothing", key: key)
            #expect(unknown.status == .notFound && unknown.headers[.contentType] == "application/problem+json")
            let large = try await server.request(
                .post,
                "/v1/jobs",
                key: key,
                json: #"{"source": {"path": "\#(String(repeating: "a", count: 100_000))"}}"#
            )
            #expect(large.status == .contentTooLarge, "\(large.body)")
            #expect(large.headers[.contentType] == "application/problem+json")
        }
    }
}
