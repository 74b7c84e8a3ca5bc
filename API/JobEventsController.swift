import FarmCoordinator
import Foundation
import Hummingbird
import ServiceLifecycle

/// `GET /v1/jobs/{id}/events` (Server-Sent Events: the job's state changes and progress, resumable with
/// `Last-Event-ID`) and `GET /v1/jobs/{id}/webhooks` (its webhook deliveries and every attempt).
///
/// Events are rows in PostgreSQL (migration 11), so any coordinator serves any stream; a stream waits on NOTIFY
/// (`APISignals.events`) and sends a comment as a heartbeat when it has been quiet, so that proxies keep it open. It
/// ends after the job's last event (ready, failed or cancelled).
struct JobEventsController: Sendable {
    let store: JobStore
    let signals: APISignals
    /// The longest a stream stays silent: a `: heartbeat` comment then.
    let heartbeat: Duration

    func addRoutes(to group: RouterGroup<APIRequestContext>) -> [String] {
        group.get("{id}/events", use: self.events)
        group.get("{id}/webhooks", use: self.webhooks)
        return ["GET /v1/jobs/{id}/events", "GET /v1/jobs/{id}/webhooks"]
    }

    static let lastEventID = HTTPFields.Element.Name("Last-Event-ID")!

    @Sendable func events(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try JobsController.tenant(context)
        let id = try JobsController.jobID(context)
        guard try await self.store.job(id, tenant: tenant) != nil else { throw Problem.notFound("job \(id)") }
        let after = try request.headers[Self.lastEventID].map { text -> Int64 in
            guard let after = Int64(text), after >= 0 else {
                throw Problem.badRequest("Last-Event-ID \(text) is not an id this stream sent; send the last id: seen")
            }
            return after
        }
        // The first page now, so that a database error is an answer rather than a broken stream.
        let first = try await self.store.events(jobID: id, after: after ?? 0)
        let store = self.store
        let signals = self.signals
        let heartbeat = self.heartbeat
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .connection: "keep-alive"],
            body: ResponseBody { writer in
                try await Self.stream(
                    jobID: id,
                    first: first,
                    after: after ?? 0,
                    store: store,
                    signals: signals,
                    heartbeat: heartbeat,
                    writer: &writer
                )
                try await writer.finish(nil)
            }
        )
    }

    private static func stream(
        jobID: Int64,
        first: [JobEvent],
        after: Int64,
        store: JobStore,
        signals: APISignals,
        heartbeat: Duration,
        writer: inout any ResponseBodyWriter
    ) async throws {
        var last = after
        var page: [JobEvent]? = first
        var lastWrite = ContinuousClock.now
        try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let seen = signals.events.generation
            let events: [JobEvent]
            if let first = page {
                events = first
                page = nil
            } else {
                events = try await store.events(jobID: jobID, after: last)
            }
            if !events.isEmpty {
                var text = ""
                for event in events {
                    text += "id: \(event.id)\nevent: \(event.kind)\ndata: \(event.data)\n\n"
                    last = event.id
                }
                try await writer.write(ByteBuffer(string: text))
                lastWrite = .now
                if events.contains(where: \.isFinal) { return }
                continue
            }
            let quiet = ContinuousClock.now - lastWrite
            if quiet >= heartbeat {
                try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                lastWrite = .now
                continue
            }
            await signals.events.wait(since: seen, timeout: heartbeat - quiet)
        }
    }

    /// A delivery as `GET /v1/jobs/{id}/webhooks` shows it (`WebhookDelivery` in docs/openapi.yaml).
    struct DeliveryResource: Codable {
        struct Attempt: Codable {
            var attempt: Int
            var startedAt: String
            var durationMs: Int
            var status: Int?
            var error: String?
            var responseExcerpt: String?
        }

        var id: Int64
        var event: String
        var url: String
        var state: String
        var createdAt: String
        var nextAttemptAt: String?
        var attempts: [Attempt]
    }

    @Sendable func webhooks(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try JobsController.tenant(context)
        let id = try JobsController.jobID(context)
        guard let deliveries = try await self.store.webhookDeliveries(jobID: id, tenant: tenant) else {
            throw Problem.notFound("job \(id)")
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let resources = deliveries.map { delivery in
            DeliveryResource(
                id: delivery.id,
                event: delivery.event,
                url: delivery.url,
                state: delivery.state,
                createdAt: formatter.string(from: delivery.createdAt),
                nextAttemptAt: delivery.nextAttemptAt.map { formatter.string(from: $0) },
                attempts: delivery.attempts.map {
                    DeliveryResource.Attempt(
                        attempt: $0.attempt,
                        startedAt: formatter.string(from: $0.startedAt),
                        durationMs: $0.durationMilliseconds,
                        status: $0.status,
                        error: $0.error,
                        responseExcerpt: $0.responseExcerpt
                    )
                }
            )
        }
        return try JobsController.json(["deliveries": resources])
    }
}
