import AsyncHTTPClient
import FarmCoordinator
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// How webhooks are retried.
package struct WebhookRetries: Sendable {
    /// The wait after the first failed attempt; each next one doubles it (±25 %), up to `longestWait`.
    package var firstWait: Double
    package var longestWait: Double
    /// How long an attempt may take.
    package var attemptTimeout: Duration

    package init(firstWait: Double = 10, longestWait: Double = 3600, attemptTimeout: Duration = .seconds(10)) {
        self.firstWait = firstWait
        self.longestWait = longestWait
        self.attemptTimeout = attemptTimeout
    }

    /// The wait before attempt `attempt + 1`, `jitter` in 0...1.
    package func wait(after attempt: Int, jitter: Double) -> Double {
        min(self.longestWait, self.firstWait * pow(2, Double(max(attempt, 1) - 1))) * (0.75 + jitter / 2)
    }
}

/// Sends the webhooks of API jobs (a `job.ready` or `job.failed` POST, signed: `WebhookSignature`), each delivery
/// claimed in PostgreSQL for one attempt, so one coordinator sends it; a 2xx answer delivers it, anything else (no
/// answer, a timeout, a redirect, a 4xx or 5xx) is tried again with exponential backoff until 24 hours after the job
/// ended. Every attempt is recorded with its status, duration and the start of the answer.
struct WebhookSender: Service {
    var store: JobStore
    var http: HTTPClient
    var policy: OutboundURLPolicy
    var signal: WorkSignal
    var retries: WebhookRetries
    var logger: Logger
    /// Deliveries in flight at once per coordinator, so one slow receiver does not hold the others back.
    var concurrency = 4

    func run() async {
        // A shutdown cancels an attempt midway: its lease runs out and another coordinator sends it again.
        try? await cancelWhenGracefulShutdown {
            try await Migrations.waitUntilCurrent(self.store.client, logger: self.logger)
            await withDiscardingTaskGroup { group in
                for _ in 0..<self.concurrency { group.addTask { await self.work() } }
            }
        }
    }

    private func work() async {
        while !Task.isCancelled {
            let seen = self.signal.generation
            var wait = 30.0
            do {
                while let delivery = try await self.store.claimWebhookDelivery(
                    leaseSeconds: self.retries.attemptTimeout.seconds + 30
                ) {
                    try await self.attempt(delivery)
                }
                wait = min(wait, try await self.store.secondsUntilNextWebhook() ?? wait)
            } catch is CancellationError {
                return
            } catch {
                self.logger.warning("webhook round failed; retrying", metadata: ["error": "\(error)"])
                wait = 1
            }
            await self.signal.wait(since: seen, timeout: .seconds(configured: max(wait, 0.05)))
        }
    }

    private func attempt(_ delivery: WebhookDelivery) async throws {
        let body = try await self.store.fixWebhookBody(delivery.id, body: try await self.body(of: delivery))
        let startedAt = Date()
        let started = ContinuousClock.now
        var status: Int?
        var failure: String?
        var excerpt: String?
        var refused = false
        do {
            _ = try await self.policy.check(delivery.url, purpose: "webhook")
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            let timestamp = Int64(Date().timeIntervalSince1970)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "farm")
            request.headers.add(name: "Farm-Event", value: delivery.event)
            request.headers.add(name: "Farm-Delivery", value: "\(delivery.id)")
            request.headers.add(
                name: "Farm-Signature",
                value: WebhookSignature.header(body: body, secret: delivery.secret, timestamp: timestamp)
            )
            request.body = .bytes(ByteBuffer(data: body))
            let response = try await self.http.execute(
                request,
                timeout: .milliseconds(Int64(self.retries.attemptTimeout.seconds * 1000))
            )
            status = Int(response.status.code)
            let answer = try await response.body.collect(upTo: 64 * 1024)
            excerpt = String(decoding: answer.readableBytesView.prefix(512), as: UTF8.self)
        } catch let error as OutboundURLRefused {
            // Its host now resolves inside the coordinator's networks: no retry sends it there.
            failure = error.description
            refused = true
        } catch {
            failure = "\(error)"
        }
        let delivered = status.map { (200..<300).contains($0) } ?? false
        let next = self.retries.wait(after: delivery.attempt, jitter: Double.random(in: 0...1))
        let outcome: WebhookOutcome =
            delivered
            ? .delivered
            : refused || Date().addingTimeInterval(next) > delivery.giveUpAt ? .gaveUp : .retry(after: next)
        try await self.store.recordWebhookAttempt(
            delivery.id,
            attempt: WebhookAttempt(
                attempt: delivery.attempt,
                startedAt: startedAt,
                durationMilliseconds: Int((ContinuousClock.now - started).seconds * 1000),
                status: status,
                error: failure ?? (delivered ? nil : "the receiver answered \(status ?? 0), not 2xx"),
                responseExcerpt: excerpt
            ),
            outcome: outcome
        )
        self.logger.info(
            "webhook attempt",
            metadata: [
                "job": "\(delivery.jobID)", "delivery": "\(delivery.id)", "attempt": "\(delivery.attempt)",
                "status": "\(status.map(String.init) ?? "none")", "outcome": "\(outcome)",
            ]
        )
    }

    /// The delivery's JSON: its id and event, and the job as `GET /v1/jobs/{id}` shows it.
    private func body(of delivery: WebhookDelivery) async throws -> Data {
        struct Body: Encodable {
            var id: String
            var type: String
            var createdAt: String
            var job: JobResource?
        }
        let job = try await self.store.job(delivery.jobID, tenant: delivery.tenant)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(
            Body(
                id: "\(delivery.id)",
                type: delivery.event,
                createdAt: ISO8601DateFormatter().string(from: delivery.createdAt),
                job: job.map(JobResource.init)
            )
        )
    }
}
