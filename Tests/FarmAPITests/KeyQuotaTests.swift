import FarmAPI
import FarmCoordinator
import FarmTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// A key's caps of jobs in flight and open uploads (docs/api.md, "Limits") over real HTTP against a real
/// PostgreSQL: a 429 that says what to do, room again once a job ends or an upload is done, replays never refused,
/// and a burst that cannot slip past the cap.
@Suite("API key quotas", .requiresPostgreSQL)
struct KeyQuotaTests {
    static let limits = APIKeyLimits(maxJobsInFlight: 2, maxUploads: 1)

    static func submit(
        _ server: APIServerTests.Server,
        _ key: APIKey,
        idempotencyKey: String? = nil
    ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: [String: Any]) {
        let source = server.sources + "/clip.mp4"
        if !FileManager.default.fileExists(atPath: source) {
            try Data("not decoded: no planner runs here".utf8).write(to: URL(fileURLWithPath: source))
        }
        return try await server.request(
            .post,
            "/v1/jobs",
            key: key,
            json: #"{"source": {"path": "\#(source)"}, "rungs": ["240p"]}"#,
            headers: idempotencyKey.map { [APIServerTests.idempotencyKey: $0] } ?? [:]
        )
    }

    @Test func aKeyAtItsCapOfJobsInFlightGetsA429UntilOneEnds() async throws {
        try await APIServerTests.withServer(keyLimits: Self.limits) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, roomy) = try await server.keys.create(tenant: "acme", caps: APIKeyCaps(maxJobsInFlight: 3))
            let first = try await Self.submit(server, acme, idempotencyKey: "first")
            try #require(first.status == .created, "\(first.body)")
            #expect(try await Self.submit(server, acme).status == .created)

            let refused = try await Self.submit(server, acme)
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.contentType] == "application/problem+json")
            #expect(refused.headers[.retryAfter] == "30")
            let detail = try #require(refused.body["detail"] as? String)
            #expect(detail.contains("2 jobs") && detail.contains("cancel one"), "\(detail)")
            // A request replayed with its Idempotency-Key makes no job: it is answered, cap or not.
            let replayed = try await Self.submit(server, acme, idempotencyKey: "first")
            #expect(replayed.status == .created && replayed.headers[APIServerTests.replayed] == "true")
            // The cap is the key's, not the tenant's: another key of acme, with a cap of its own, has room.
            #expect(try await Self.submit(server, roomy).status == .created)
            let listed = try await server.request(.get, "/v1/jobs", key: acme).body["jobs"] as? [Any]
            #expect(listed?.count == 3)

            let id = try #require(APIServerTests.id(first.body))
            #expect(try await server.request(.post, "/v1/jobs/\(id)/cancel", key: acme).status == .ok)
            #expect(try await Self.submit(server, acme).status == .created)
            #expect(try await Self.submit(server, acme).status == .tooManyRequests)
            // A retry is a job in flight too.
            let retried = try await server.request(.post, "/v1/jobs/\(id)/retry", key: acme)
            #expect(retried.status == .tooManyRequests, "\(retried.body)")
        }
    }

    /// Submits at once from many tasks: the key's lock lets exactly its cap through, never one more.
    @Test func aBurstOfSubmitsTakesExactlyTheCap() async throws {
        try await APIServerTests.withServer(keyLimits: Self.limits) { server in
            let (keyID, _) = try await server.keys.create(tenant: "acme", caps: APIKeyCaps(maxJobsInFlight: 3))
            let quota = APIKeyQuota(keyID: keyID, defaults: Self.limits)
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        do {
                            _ = try await server.store.submit(
                                source: server.sources + "/clip.mp4",
                                outputDirectory: server.sources + "/out-\(index)",
                                settings: JobSettings(rungs: ["240p"]),
                                priority: 0,
                                tenant: "acme",
                                idempotency: nil,
                                retryOf: nil,
                                details: APIJobDetails(quota: quota)
                            )
                            return true
                        } catch let error as QuotaReached {
                            #expect(error.kind == .jobsInFlight && error.limit == 3)
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 3, "\(outcomes)")
        }
    }

    @Test func aKeyAtItsCapOfOpenUploadsGetsA429UntilOneIsDone() async throws {
        try await APIServerTests.withServer(keyLimits: Self.limits) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            func create(_ length: Int, bytes: [UInt8]? = nil) async throws -> TestResponse {
                var extra = ["Upload-Length": "\(length)"]
                if bytes != nil { extra["Content-Type"] = "application/offset+octet-stream" }
                return try await server.client.execute(
                    uri: "/v1/uploads",
                    method: .post,
                    headers: UploadsTests.headers(acme, extra),
                    body: bytes.map { ByteBuffer(bytes: $0) }
                )
            }
            let open = try await create(4)
            try #require(open.status == .created)
            let refused = try await create(4)
            #expect(refused.status == .tooManyRequests && refused.headers[.location] == nil)
            #expect(String(buffer: refused.body).contains("terminate (DELETE) one"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: server.uploads).count == 1)

            // Finished, the first upload is open no more.
            let location = try #require(open.headers[.location])
            let finished = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: UploadsTests.headers(acme, UploadsTests.piece(0)),
                body: ByteBuffer(bytes: [1, 2, 3, 4])
            )
            #expect(finished.status == .noContent)
            let next = try await create(4)
            #expect(next.status == .created)
            // Terminated, neither is it.
            let nextLocation = try #require(next.headers[.location])
            #expect(
                try await server.client.execute(uri: nextLocation, method: .delete, headers: UploadsTests.headers(acme))
                    .status == .noContent
            )
            #expect(try await create(2, bytes: [7, 8]).status == .created)
        }
    }

    /// An upload whose `farm-settings` would make a job over the key's cap keeps its bytes: the job is made by the
    /// HEAD after room came back.
    @Test func anUploadFinishedAtTheJobCapMakesItsJobOnceThereIsRoom() async throws {
        try await APIServerTests.withServer(keyLimits: APIKeyLimits(maxJobsInFlight: 1, maxUploads: 5)) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let first = try await Self.submit(server, acme)
            try #require(first.status == .created)
            let settings = Data(#"{"rungs": ["240p"]}"#.utf8).base64EncodedString()
            let created = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: UploadsTests.headers(
                    acme,
                    [
                        "Upload-Length": "4", "Upload-Metadata": "farm-settings \(settings)",
                        "Content-Type": "application/offset+octet-stream",
                    ]
                ),
                body: ByteBuffer(bytes: [1, 2, 3, 4])
            )
            #expect(created.status == .created && created.headers[UploadsTests.name("Upload-Offset")] == "4")
            #expect(created.headers[UploadsTests.name("Farm-Job")] == nil)
            let location = try #require(created.headers[.location])
            let id = try #require(APIServerTests.id(first.body))
            #expect(try await server.request(.post, "/v1/jobs/\(id)/cancel", key: acme).status == .ok)
            let head = try await server.client.execute(
                uri: location,
                method: .head,
                headers: UploadsTests.headers(acme)
            )
            #expect(head.status == .ok && head.headers[UploadsTests.name("Farm-Job")] != nil)
        }
    }
}
