import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// Handing tasks to agents, keeping their leases alive, and giving them back.
extension JobStore {
    /// Leases the best queued task to an agent, in one statement: the task is locked with SKIP LOCKED so concurrent
    /// coordinators never hand one task out twice, its attempt is counted now, and its fencing token is fresh from
    /// a sequence, so it is larger than every token issued before.
    ///
    /// The order (job priority, task priority, job, task) is the `tasks_queue` index's, so a lease reads the queue
    /// from its head and stops at the first task it can take, however long the queue (migration 6).
    package func lease(agentID: Int64, agentName: String, leaseSeconds: Double) async throws -> LeasedTask? {
        let rows = try await self.client.query(
            """
            WITH candidate AS (
                SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id
                WHERE t.state = \(TaskState.queued) AND t.run_after <= now() AND j.state = \(JobState.running)
                  AND (j.max_in_flight = 0
                       OR (SELECT count(*) FROM tasks l WHERE l.job_id = t.job_id AND l.state = \(TaskState.leased)) < j.max_in_flight)
                ORDER BY t.job_priority DESC, t.priority DESC, t.job_id, t.id
                FOR UPDATE OF t SKIP LOCKED
                LIMIT 1
            )
            UPDATE tasks t SET state = \(TaskState.leased), attempts = t.attempts + 1, lease_token = nextval('lease_tokens'),
                lease_owner = \(agentName), lease_agent_id = \(agentID), leased_at = now(),
                lease_expires_at = now() + make_interval(secs => \(leaseSeconds)),
                lease_deadline = now() + make_interval(secs => greatest(\(Self.minimumDeadlineSeconds), t.media_seconds * \(Self.deadlinePerMediaSecond)))
            FROM candidate, jobs j
            WHERE t.id = candidate.id AND j.id = t.job_id
            RETURNING t.id, t.lease_token, t.job_id, t.spec, t.extract, j.source, j.output_dir, t.attempts
            """,
            logger: self.logger
        )
        for try await (id, token, jobID, spec, extract, source, output, attempts) in rows.decode(
            (Int64, Int64, Int64, TaskSpec, SourceExtract, String, String, Int).self
        ) {
            return LeasedTask(
                taskID: id,
                token: token,
                jobID: jobID,
                spec: spec,
                extract: extract,
                source: source,
                outputDirectory: output,
                attempts: attempts
            )
        }
        return nil
    }

    /// However often it heartbeats, an agent cannot hold a task longer than this: a wedged encoder (alive, but
    /// stuck) loses its task too.
    package static let minimumDeadlineSeconds = 600.0
    package static let deadlinePerMediaSecond = 60.0

    /// Gives a lease back untouched (the agent left before it got the source): the attempt does not count.
    package func releaseLease(taskID: Int64, token: Int64) async throws {
        _ = try await self.client.query(
            """
            UPDATE tasks SET state = \(TaskState.queued), attempts = greatest(attempts - 1, 0), lease_expires_at = NULL
            WHERE id = \(taskID) AND lease_token = \(token) AND state = \(TaskState.leased)
            """,
            logger: self.logger
        )
        try await self.notifyWork("released")
    }

    /// Extends a lease while its token is current. False tells the agent it lost the task and must stop.
    package func heartbeat(taskID: Int64, token: Int64, leaseSeconds: Double) async throws -> Bool {
        let key = HeartbeatBatcher.Key(taskID: taskID, token: token)
        return try await self.heartbeat([key], leaseSeconds: leaseSeconds).contains(key)
    }

    /// Extends many leases in one statement (see `HeartbeatBatcher`); returns the ones still held.
    package func heartbeat(
        _ batch: [HeartbeatBatcher.Key],
        leaseSeconds: Double
    ) async throws -> Set<HeartbeatBatcher.Key> {
        let ids = batch.map(\.taskID)
        let tokens = batch.map(\.token)
        let rows = try await self.client.query(
            """
            UPDATE tasks t SET lease_expires_at = least(now() + make_interval(secs => \(leaseSeconds)), t.lease_deadline)
            FROM unnest(\(ids)::bigint[], \(tokens)::bigint[]) AS beat(id, token)
            WHERE t.id = beat.id AND t.lease_token = beat.token AND t.state = \(TaskState.leased) AND t.lease_deadline > now()
            RETURNING t.id, t.lease_token
            """,
            logger: self.logger
        )
        var renewed = Set<HeartbeatBatcher.Key>()
        for try await (id, token) in rows.decode((Int64, Int64).self) {
            renewed.insert(HeartbeatBatcher.Key(taskID: id, token: token))
        }
        return renewed
    }
}
