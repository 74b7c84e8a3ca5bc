import Foundation
import Logging
import PostgresNIO

/// A webhook delivery claimed for one attempt (`JobStore.claimWebhookDelivery`).
package struct WebhookDelivery: Sendable, Equatable {
    package var id: Int64
    package var jobID: Int64
    package var tenant: String
    /// `job.ready` or `job.failed`.
    package var event: String
    package var url: String
    package var secret: String
    /// The bytes every attempt sends, once the first attempt has fixed them.
    package var body: Data?
    /// This attempt's number: 1 for the first.
    package var attempt: Int
    package var createdAt: Date
    package var giveUpAt: Date
}

/// One attempt at a delivery, as `GET /v1/jobs/{id}/webhooks` shows it.
package struct WebhookAttempt: Sendable, Equatable {
    package var attempt: Int
    package var startedAt: Date
    package var durationMilliseconds: Int
    /// The receiver's HTTP status, or nil when it gave none (no connection, a timeout).
    package var status: Int?
    package var error: String?
    package var responseExcerpt: String?

    package init(
        attempt: Int,
        startedAt: Date,
        durationMilliseconds: Int,
        status: Int?,
        error: String?,
        responseExcerpt: String?
    ) {
        self.attempt = attempt
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.status = status
        self.error = error
        self.responseExcerpt = responseExcerpt
    }
}

/// A delivery with its attempts.
package struct WebhookDeliveryRecord: Sendable, Equatable {
    package var id: Int64
    package var event: String
    package var url: String
    /// `pending`, `delivered` or `failed` (given up).
    package var state: String
    package var createdAt: Date
    package var nextAttemptAt: Date?
    package var attempts: [WebhookAttempt]
}

/// What an attempt leads to.
package enum WebhookOutcome: Sendable, Equatable {
    case delivered
    /// Tried again after this many seconds.
    case retry(after: Double)
    /// No more tries: the delivery failed.
    case gaveUp
}

/// Webhook deliveries (migration 12): made by a trigger when an API job with a webhook reaches ready or failed, sent
/// by one coordinator at a time, each attempt recorded.
extension JobStore {
    /// Claims the delivery due first for one attempt of up to `leaseSeconds`.
    package func claimWebhookDelivery(leaseSeconds: Double) async throws -> WebhookDelivery? {
        let rows = try await self.client.query(
            """
            UPDATE webhook_deliveries d
            SET leased_until = now() + make_interval(secs => \(leaseSeconds)), attempts = d.attempts + 1
            FROM jobs j
            WHERE j.id = d.job_id AND d.id = (
                SELECT id FROM webhook_deliveries
                WHERE state = 'pending' AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until < now())
                ORDER BY next_attempt_at, id FOR UPDATE SKIP LOCKED LIMIT 1
            )
            RETURNING d.id, d.job_id, coalesce(j.tenant, ''), d.event, d.url, coalesce(j.webhook_secret, ''), d.body,
                      d.attempts, d.created_at, d.give_up_at
            """,
            logger: self.logger
        )
        for try await (id, job, tenant, event, url, secret, body, attempt, created, giveUp) in rows.decode(
            (Int64, Int64, String, String, String, String, Data?, Int, Date, Date).self
        ) {
            return WebhookDelivery(
                id: id,
                jobID: job,
                tenant: tenant,
                event: event,
                url: url,
                secret: secret,
                body: body,
                attempt: attempt,
                createdAt: created,
                giveUpAt: giveUp
            )
        }
        return nil
    }

    /// Fixes the delivery's body to `body` unless an earlier attempt fixed it; returns the body every attempt sends.
    package func fixWebhookBody(_ deliveryID: Int64, body: Data) async throws -> Data {
        let rows = try await self.client.query(
            "UPDATE webhook_deliveries SET body = coalesce(body, \(body)) WHERE id = \(deliveryID) RETURNING body",
            logger: self.logger
        )
        for try await stored in rows.decode(Data.self) { return stored }
        return body
    }

    /// Records an attempt and what it leads to, in one transaction.
    package func recordWebhookAttempt(
        _ deliveryID: Int64,
        attempt: WebhookAttempt,
        outcome: WebhookOutcome
    ) async throws {
        let state: String
        var retryAfter: Double?
        switch outcome {
        case .delivered: state = "delivered"
        case .gaveUp: state = "failed"
        case .retry(let seconds):
            state = "pending"
            retryAfter = seconds
        }
        try await self.client.withTransaction(logger: self.logger) { connection in
            _ = try await connection.query(
                """
                INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status, error, response_excerpt)
                VALUES (\(deliveryID), \(attempt.attempt), \(attempt.startedAt), \(attempt.durationMilliseconds),
                        \(attempt.status), \(attempt.error), \(attempt.responseExcerpt))
                ON CONFLICT DO NOTHING
                """,
                logger: self.logger
            )
            _ = try await connection.query(
                """
                UPDATE webhook_deliveries
                SET state = \(state), leased_until = NULL,
                    next_attempt_at = now() + make_interval(secs => \(retryAfter ?? 0)),
                    finished_at = CASE WHEN \(state) = 'pending' THEN NULL ELSE now() END
                WHERE id = \(deliveryID)
                """,
                logger: self.logger
            )
        }
    }

    /// Seconds until the next pending delivery is due (0 when one is), or nil when none is pending.
    package func secondsUntilNextWebhook() async throws -> Double? {
        let rows = try await self.client.query(
            """
            SELECT greatest(extract(epoch FROM min(greatest(next_attempt_at, coalesce(leased_until, next_attempt_at))) - now()), 0)::double precision
            FROM webhook_deliveries WHERE state = 'pending'
            """,
            logger: self.logger
        )
        for try await seconds in rows.decode(Double?.self) { return seconds }
        return nil
    }

    /// The deliveries of the tenant's job with their attempts, oldest first; nil when the tenant has no such job.
    package func webhookDeliveries(jobID: Int64, tenant: String) async throws -> [WebhookDeliveryRecord]? {
        guard try await self.job(jobID, tenant: tenant) != nil else { return nil }
        let rows = try await self.client.query(
            """
            SELECT d.id, d.event, d.url, d.state, d.created_at,
                   CASE WHEN d.state = 'pending' THEN d.next_attempt_at END,
                   a.attempt, a.started_at, a.duration_ms, a.status, a.error, a.response_excerpt
            FROM webhook_deliveries d LEFT JOIN webhook_attempts a ON a.delivery_id = d.id
            WHERE d.job_id = \(jobID) ORDER BY d.id, a.attempt
            """,
            logger: self.logger
        )
        var records: [WebhookDeliveryRecord] = []
        for try await (id, event, url, state, created, next, attempt, started, duration, status, error, excerpt)
            in rows.decode(
                (Int64, String, String, String, Date, Date?, Int?, Date?, Int?, Int?, String?, String?).self
            )
        {
            if records.last?.id != id {
                records.append(
                    WebhookDeliveryRecord(
                        id: id,
                        event: event,
                        url: url,
                        state: state,
                        createdAt: created,
                        nextAttemptAt: next,
                        attempts: []
                    )
                )
            }
            if let attempt, let started, let duration {
                records[records.count - 1].attempts.append(
                    WebhookAttempt(
                        attempt: attempt,
                        startedAt: started,
                        durationMilliseconds: duration,
                        status: status,
                        error: error,
                        responseExcerpt: excerpt
                    )
                )
            }
        }
        return records
    }
}
