import FarmAPI
import FarmCoordinator
import FarmTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// URL sources, webhooks and metadata as `POST /v1/jobs` takes them, and the event stream of a job, over real HTTP
/// against a real PostgreSQL (no planner runs: jobs stay submitted until the test ends them).
@Suite("Job events and outbound URLs", .requiresPostgreSQL)
struct JobEventsTests {
    @Test func urlsIntoTheCoordinatorsNetworksAreRefusedAndMetadataComesBack() async throws {
        try await APIServerTests.withServer { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            for (url, what) in [("http://127.0.0.1:8080/v.mp4", "loopback"), ("http://169.254.169.254/", "link-local")]
            {
                let refused = try await server.request(
                    .post,
                    "/v1/jobs",
                    key: acme,
                    json: #"{"source": {"url": "\#(url)"}}"#
                )
                #expect(
                    refused.status == .unprocessableContent
                        && refused.headers[.contentType] == "application/problem+json"
                )
                #expect((refused.body["detail"] as? String)?.contains(what) == true, "\(refused.body)")
            }
            let hook = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json:
                    #"{"source": {"url": "https://93.184.215.14/v.mp4"}, "webhook": {"url": "http://10.0.0.1/h", "secret": "0123456789abcdef"}}"#
            )
            #expect(hook.status == .unprocessableContent && (hook.body["title"] as? String) == "Webhook URL refused")
            let short = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json:
                    #"{"source": {"url": "https://93.184.215.14/v.mp4"}, "webhook": {"url": "https://93.184.215.14/h", "secret": "short"}}"#
            )
            #expect(short.status == .unprocessableContent, "\(short.body)")
            let both = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"source": {"url": "https://93.184.215.14/v.mp4", "path": "/x"}}"#
            )
            #expect(both.status == .badRequest, "\(both.body)")
            let large = String(repeating: "x", count: JobRequest.metadataLimit)
            let tooLarge = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"source": {"url": "https://93.184.215.14/v.mp4"}, "metadata": {"blob": "\#(large)"}}"#
            )
            #expect(tooLarge.status == .contentTooLarge, "\(tooLarge.body)")

            // A public URL is taken: the job waits for its fetch, its metadata given back as it came.
            let created = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json:
                    #"{"source": {"url": "https://93.184.215.14/v.mp4"}, "metadata": {"customer": "c-42", "n": 3, "tags": ["a"]}}"#
            )
            try #require(created.status == .created, "\(created.body)")
            #expect(created.body["sourceURL"] as? String == "https://93.184.215.14/v.mp4")
            let metadata = try #require(created.body["metadata"] as? [String: Any])
            #expect(metadata["customer"] as? String == "c-42" && metadata["n"] as? Int == 3)
            #expect(metadata["tags"] as? [String] == ["a"])
            // Not planned before it is fetched: the planner's query passes it by.
            #expect(try await server.store.planNextJob { _ in throw CancellationError() } == nil)
        }
    }

    /// Reads an event stream's whole body (it ends after the job's final event).
    static func stream(_ server: APIServerTests.Server, job: Int64, key: APIKey, after: Int64?) async throws -> String {
        var headers: HTTPFields = [.authorization: "Bearer \(key.text)"]
        if let after { headers[HTTPFields.Element.Name("Last-Event-ID")!] = "\(after)" }
        let response = try await server.client.execute(uri: "/v1/jobs/\(job)/events", method: .get, headers: headers)
        #expect(response.status == .ok && response.headers[.contentType] == "text/event-stream")
        return String(buffer: response.body)
    }

    static func ids(_ text: String) -> [Int64] {
        text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int64($0.dropFirst(4)) }
    }

    /// A job from a public URL: it waits for its fetch (none runs here), so only the test moves it.
    static func submitURLJob(_ server: APIServerTests.Server, key: APIKey) async throws -> Int64 {
        let created = try await server.request(
            .post,
            "/v1/jobs",
            key: key,
            json: #"{"source": {"url": "https://93.184.215.14/v.mp4"}}"#
        )
        return try #require(APIServerTests.id(created.body), "\(created.body)")
    }

    @Test func aStreamWakesOnNotifyEndsWithTheJobAndResumesAfterTheLastEventID() async throws {
        // A heartbeat far off: what arrives in time arrives by NOTIFY.
        try await APIServerTests.withServer(eventHeartbeat: .seconds(30)) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, other) = try await server.keys.create(tenant: "other")
            let id = try await Self.submitURLJob(server, key: acme)
            #expect(try await server.request(.get, "/v1/jobs/\(id)/events", key: other).status == .notFound)

            let started = ContinuousClock.now
            async let whole = Self.stream(server, job: id, key: acme, after: nil)
            try await Task.sleep(for: .milliseconds(500))
            // Through the store: the test client has one connection, which the stream holds.
            #expect(try await server.store.cancel(jobID: id))
            let text = try await whole
            #expect(ContinuousClock.now - started < .seconds(10), "the cancel reached the stream by NOTIFY")
            #expect(text.contains("event: state\ndata: {\"state\": \"submitted\"}"), "\(text)")
            #expect(text.contains("\"state\": \"cancelled\""), "\(text)")
            let ids = Self.ids(text)
            #expect(ids.count == 2 && ids == ids.sorted(), "\(text)")

            let rest = try await Self.stream(server, job: id, key: acme, after: ids[0])
            #expect(Self.ids(rest) == [ids[1]] && rest.contains("cancelled"), "\(rest)")
            let none = try await server.request(
                .get,
                "/v1/jobs/\(id)/events",
                key: acme,
                headers: [HTTPFields.Element.Name("Last-Event-ID")!: "yesterday"]
            )
            #expect(none.status == .badRequest)
        }
    }

    @Test func aQuietStreamSendsHeartbeats() async throws {
        try await APIServerTests.withServer(eventHeartbeat: .milliseconds(300)) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let id = try await Self.submitURLJob(server, key: acme)
            async let whole = Self.stream(server, job: id, key: acme, after: nil)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await server.store.cancel(jobID: id))
            let text = try await whole
            #expect(text.components(separatedBy: ": heartbeat\n\n").count - 1 >= 3, "\(text)")
        }
    }
}
