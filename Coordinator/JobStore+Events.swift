import Foundation
import Logging
import PostgresNIO

/// A row of `job_events` (migration 11): a state change or a task done, with its figures as JSON.
package struct JobEvent: Sendable, Equatable {
    package var id: Int64
    /// `state` or `progress`.
    package var kind: String
    /// The event's JSON object, as stored.
    package var data: String
    /// Whether the job ended with it (a `state` event of ready, failed or cancelled).
    package var isFinal: Bool
}

/// The events of API jobs, which the triggers of migration 11 write.
extension JobStore {
    /// The job's events after `after`, oldest first, at most `limit`.
    package func events(jobID: Int64, after: Int64, limit: Int = 200) async throws -> [JobEvent] {
        let rows = try await self.client.query(
            """
            SELECT id, kind, data::text,
                   kind = 'state' AND data->>'state' IN (\(JobState.ready.rawValue), \(JobState.failed.rawValue), \(JobState.cancelled.rawValue))
            FROM job_events WHERE job_id = \(jobID) AND id > \(after) ORDER BY id LIMIT \(limit)
            """,
            logger: self.logger
        )
        var events: [JobEvent] = []
        for try await (id, kind, data, isFinal) in rows.decode((Int64, String, String, Bool).self) {
            events.append(JobEvent(id: id, kind: kind, data: data, isFinal: isFinal))
        }
        return events
    }
}
