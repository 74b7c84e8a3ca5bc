import AsyncHTTPClient
import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

@testable import FarmAPI

/// The sender against a real PostgreSQL: a webhook whose URL is refused when it is due (its host resolves inside the
/// coordinator's networks by then) gives up at its first attempt, the reason recorded, instead of retrying for a day.
@Suite("Webhook sender", .requiresPostgreSQL)
struct WebhookSenderTests {
    @Test func aWebhookRefusedWhenItIsDueGivesUpAtOnce() async throws {
        try await TestDatabase.with { database in
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                let store = JobStore(client: client, logger: testLogger)
                let job = try await store.submit(
                    source: "/nowhere/clip.mp4",
                    outputDirectory: "/nowhere/out",
                    settings: JobSettings(rungs: ["240p"]),
                    priority: 0,
                    tenant: "acme",
                    idempotency: nil,
                    retryOf: nil,
                    details: APIJobDetails(webhookURL: "http://127.0.0.1:9/hook", webhookSecret: "0123456789abcdef")
                ).id
                _ = try await client.query("UPDATE jobs SET state = 'ready' WHERE id = \(job)", logger: testLogger)

                let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
                defer { _ = http.shutdown() }
                let sender = WebhookSender(
                    store: store,
                    http: http,
                    policy: OutboundURLPolicy(),
                    signal: WorkSignal(),
                    retries: WebhookRetries(firstWait: 0.1),
                    logger: testLogger
                )
                let running = Task { await sender.run() }
                defer { running.cancel() }
                var delivery: WebhookDeliveryRecord?
                for _ in 0..<100 {
                    delivery = try await store.webhookDeliveries(jobID: job, tenant: "acme")?.first
                    if delivery?.state != "pending" { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let ended = try #require(delivery)
                #expect(ended.state == "failed" && ended.attempts.count == 1, "\(ended)")
                #expect(ended.attempts.first?.error?.contains("127.0.0.1") == true, "\(ended.attempts)")
                #expect(ended.attempts.first?.status == nil)
            }
        }
    }
}
