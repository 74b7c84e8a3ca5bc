import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// What a job submitted through the HTTP API may carry beside its source and settings.
package struct APIJobDetails: Sendable, Equatable {
    /// The `http(s)://` URL the coordinator fetches the video from into `source` before the job is planned.
    package var sourceURL: String?
    /// The client's own JSON object, given back with the job.
    package var metadata: String?
    /// Where the job's webhooks go, and the secret they are signed with.
    package var webhookURL: String?
    package var webhookSecret: String?
    /// The key that submits it, whose cap of jobs in flight it counts against.
    package var quota: APIKeyQuota?

    package init(
        sourceURL: String? = nil,
        metadata: String? = nil,
        webhookURL: String? = nil,
        webhookSecret: String? = nil,
        quota: APIKeyQuota? = nil
    ) {
        self.sourceURL = sourceURL
        self.metadata = metadata
        self.webhookURL = webhookURL
        self.webhookSecret = webhookSecret
        self.quota = quota
    }
}

/// Submitting, planning, following and ending jobs.
extension JobStore {
    package func submit(
        source: String,
        outputDirectory: String,
        settings: JobSettings,
        priority: Int = 0,
        tenant: String? = nil
    ) async throws -> Int64 {
        try await self.submit(
            source: source,
            outputDirectory: outputDirectory,
            settings: settings,
            priority: priority,
            tenant: tenant,
            idempotency: nil,
            retryOf: nil
        ).id
    }

    /// Submits a job, or with an `idempotency` key the tenant used before for the same request, finds the job that
    /// request made (`replayed`). The same key with another request is refused (`IdempotencyKeyReused`).
    /// `retryOf` names the ended job this one runs again. A job over its key's cap of jobs in flight is refused
    /// (`QuotaReached`); a replayed request is not, since it makes no job.
    package func submit(
        source: String,
        outputDirectory: String,
        settings: JobSettings,
        priority: Int,
        tenant: String?,
        idempotency: IdempotencyKey?,
        retryOf: Int64?,
        details: APIJobDetails = APIJobDetails()
    ) async throws -> (id: Int64, replayed: Bool) {
        // Two jobs writing one folder at once would overwrite each other's segments: a folder belongs to one job
        // while it runs. Once it has ended (ready included), a new job may replace its output. The database enforces
        // it (the unique index `jobs_one_writer_per_output_dir`, migration 4); this statement gives the new job's id,
        // or names the running job that holds the folder. A submit racing another into the same folder (or with the
        // same idempotency key, `jobs_idempotency_key`) fails the index instead, and the next try finds the winner.
        for _ in 0..<3 {
            do {
                typealias Found = (id: Int64, holderState: JobState?, requestHash: Data?, isEarlier: Bool)
                let (found, cap) = try await self.client.withTransaction(logger: self.logger) {
                    connection -> ([Found], Int?) in
                    var cap: Int?
                    if let quota = details.quota {
                        cap = try await self.lockQuota(quota, .jobsInFlight, on: connection)
                    }
                    let rows = try await connection.query(
                        """
                        WITH earlier AS (
                            SELECT id, request_hash FROM jobs
                            WHERE tenant = \(tenant) AND idempotency_key = \(idempotency?.key)
                        ), holder AS (
                            SELECT id, state FROM jobs
                            WHERE output_dir = \(outputDirectory) AND state IN (\(JobState.submitted), \(JobState.running), \(JobState.stitching))
                            ORDER BY id LIMIT 1
                        ), inserted AS (
                            INSERT INTO jobs (source, output_dir, settings, priority, max_in_flight, tenant, idempotency_key, request_hash, retry_of,
                                              source_url, metadata, webhook_url, webhook_secret, api_key_id)
                            SELECT \(source), \(outputDirectory), \(settings), \(priority), \(settings.maxInFlight), \(tenant),
                                   \(idempotency?.key), \(idempotency?.requestHash), \(retryOf),
                                   \(details.sourceURL), \(details.metadata)::jsonb, \(details.webhookURL), \(details.webhookSecret),
                                   \(details.quota?.keyID)
                            WHERE NOT EXISTS (SELECT 1 FROM holder) AND NOT EXISTS (SELECT 1 FROM earlier)
                              AND (\(cap)::integer IS NULL OR (
                                  SELECT count(*) FROM jobs WHERE api_key_id = \(details.quota?.keyID)
                                  AND state IN (\(JobState.submitted), \(JobState.running), \(JobState.stitching))
                              ) < \(cap))
                            RETURNING id
                        )
                        SELECT id, NULL::text, NULL::bytea, false FROM inserted
                        UNION ALL SELECT id, state, NULL::bytea, false FROM holder
                        UNION ALL SELECT id, NULL::text, request_hash, true FROM earlier
                        """,
                        logger: self.logger
                    )
                    var found: [Found] = []
                    for try await row in rows.decode((Int64, JobState?, Data?, Bool).self) { found.append(row) }
                    return (found, cap)
                }
                if let earlier = found.first(where: \.isEarlier) {
                    guard earlier.requestHash == idempotency?.requestHash else {
                        throw IdempotencyKeyReused(key: idempotency?.key ?? "", jobID: earlier.id)
                    }
                    return (earlier.id, true)
                }
                if let holder = found.first(where: { $0.holderState != nil }), let state = holder.holderState {
                    throw OutputFolderInUse(outputDirectory: outputDirectory, jobID: holder.id, state: state)
                }
                guard let inserted = found.first else {
                    // Neither an earlier request nor a holder: only the key's cap keeps a job out.
                    if let cap { throw QuotaReached(kind: .jobsInFlight, limit: cap) }
                    throw ConfigurationError("inserting the job returned no id")
                }
                if details.sourceURL == nil {
                    try await self.notifyWork("job")
                } else {
                    try await self.notifyAPI("fetch")
                }
                return (inserted.id, false)
            } catch let error as PostgresTransactionError
                where (error.closureError as? PSQLError)?.serverInfo?[.sqlState] == "23505"
            {
                // The transaction rolled back (its key lock with it): try again, and find the winner.
                continue
            }
        }
        throw ConfigurationError(
            "the output folder \(outputDirectory) was claimed and released by other submits three times in a row; "
                + "submit again"
        )
    }

    /// Claims one submitted job and plans it, all in one transaction: a coordinator that dies while planning leaves
    /// the job submitted for another. A planning error fails the job with its message. Returns the job's id, or nil
    /// when no job waits.
    package func planNextJob(
        _ plan: @Sendable (JobToPlan) async throws -> PlannedJob
    ) async throws -> (id: Int64, error: String?)? {
        try await self.client.withTransaction(logger: self.logger) { connection -> (id: Int64, error: String?)? in
            let rows = try await connection.query(
                """
                SELECT id, source, output_dir, settings, priority FROM jobs
                WHERE state = \(JobState.submitted) AND (source_url IS NULL OR source_fetched_at IS NOT NULL)
                ORDER BY priority DESC, id
                FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: JobToPlan?
            // Its tasks carry it: the lease's index orders by it (migration 6).
            var jobPriority = 0
            for try await (id, source, output, settings, priority) in rows.decode(
                (Int64, String, String, JobSettings, Int).self
            ) {
                claimed = JobToPlan(id: id, source: source, outputDirectory: output, settings: settings)
                jobPriority = priority
            }
            guard let job = claimed else { return nil }
            let planned: PlannedJob
            do {
                planned = try await plan(job)
            } catch {
                let message = "\(error)"
                _ = try await connection.query(
                    """
                    UPDATE jobs SET state = \(JobState.failed), error = \(message), updated_at = now(), finished_at = now()
                    WHERE id = \(job.id)
                    """,
                    logger: self.logger
                )
                return (job.id, message)
            }
            for rendition in planned.renditions {
                _ = try await connection.query(
                    """
                    INSERT INTO renditions (job_id, name, width, height, max_bitrate, codec)
                    VALUES (\(job.id), \(rendition.name), \(rendition.width), \(rendition.height),
                            \(rendition.maxBitrate), \(job.settings.encoder.codec))
                    """,
                    logger: self.logger
                )
            }
            for chunk in planned.chunks {
                _ = try await connection.query(
                    """
                    INSERT INTO chunks (job_id, index, start_pts, end_pts, preroll_pts, first_packet, last_packet,
                                        frame_count, segment_starts, first_segment)
                    VALUES (\(job.id), \(chunk.index), \(chunk.startPTS), \(chunk.endPTS), \(chunk.prerollPTS),
                            \(chunk.firstPacket), \(chunk.lastPacket), \(chunk.frameCount), \(chunk.segmentStarts),
                            \(chunk.firstSegmentIndex))
                    """,
                    logger: self.logger
                )
            }
            for task in planned.tasks {
                let chunkIndex: Int? = task.spec.kind == .video ? task.spec.chunkIndex : nil
                let end =
                    task.spec.endPTS
                    ?? (task.spec.originPTS + Int64(planned.sourceInfo.durationSeconds / task.spec.timeBase.doubleValue))
                let mediaSeconds = max(0, task.spec.timeBase.seconds(end - task.spec.startPTS))
                _ = try await connection.query(
                    """
                    INSERT INTO tasks (job_id, kind, chunk_index, spec, extract, priority, job_priority, max_attempts,
                                       media_seconds)
                    VALUES (\(job.id), \(task.spec.kind.rawValue), \(chunkIndex), \(task.spec), \(task.extract),
                            \(task.priority), \(jobPriority), \(job.settings.maxAttempts), \(mediaSeconds))
                    """,
                    logger: self.logger
                )
            }
            _ = try await connection.query(
                """
                UPDATE jobs SET state = \(JobState.running), source_info = \(planned.sourceInfo),
                    duration_seconds = \(planned.sourceInfo.durationSeconds), updated_at = now()
                WHERE id = \(job.id)
                """,
                logger: self.logger
            )
            try await self.notifyWork("tasks", on: connection)
            return (job.id, nil)
        }
    }

    /// Cancels a job: its queued and leased tasks are cancelled and the agents working on them are told to stop.
    /// Returns false when the job had already ended.
    package func cancel(jobID: Int64) async throws -> Bool {
        try await self.client.withTransaction(logger: self.logger) { connection in
            try await self.endJob(jobID, state: .cancelled, error: "cancelled by request", on: connection)
        }
    }

    package func status(jobID: Int64) async throws -> JobStatus? {
        let rows = try await self.client.query(
            """
            SELECT j.id, j.state, j.error, j.output_dir, j.duration_seconds,
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id),
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND t.state = \(TaskState.done)),
                   (SELECT coalesce(sum(s.duration::double precision * s.timebase_num / s.timebase_den), 0)
                      FROM segments s JOIN tasks t ON t.id = s.task_id
                     WHERE s.job_id = j.id AND t.kind = 'video'
                       AND s.rendition = (SELECT min(name) FROM renditions r WHERE r.job_id = j.id))
            FROM jobs j WHERE j.id = \(jobID)
            """,
            logger: self.logger
        )
        for try await (id, state, error, output, duration, total, done, seconds) in rows.decode(
            (Int64, JobState, String?, String, Double?, Int64, Int64, Double).self
        ) {
            return JobStatus(
                id: id,
                state: state,
                error: error,
                outputDirectory: output,
                durationSeconds: duration,
                tasksTotal: Int(total),
                tasksDone: Int(done),
                secondsDone: seconds
            )
        }
        return nil
    }

    /// Fails a job with a report, cancelling its other tasks. Returns false when it had already ended.
    @discardableResult
    package func failJob(_ jobID: Int64, error: String, on connection: PostgresConnection) async throws -> Bool {
        try await self.endJob(jobID, state: .failed, error: error, on: connection)
    }

    /// Ends a job that has not ended yet: its queued and leased tasks are cancelled, and a `revoke:<job>`
    /// notification (delivered at commit) makes every coordinator revoke the job's leases on its agents.
    private func endJob(
        _ jobID: Int64,
        state: JobState,
        error: String,
        on connection: PostgresConnection
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE jobs SET state = \(state), error = \(error), updated_at = now(), finished_at = now()
            WHERE id = \(jobID) AND state IN (\(JobState.submitted), \(JobState.running), \(JobState.stitching)) RETURNING id
            """,
            logger: self.logger
        )
        var ended = false
        for try await _ in rows.decode(Int64.self) { ended = true }
        if ended {
            _ = try await connection.query(
                "UPDATE tasks SET state = \(TaskState.cancelled), lease_expires_at = NULL WHERE job_id = \(jobID) AND state IN (\(TaskState.queued), \(TaskState.leased))",
                logger: self.logger
            )
            try await self.notifyWork(Self.revokePrefix + String(jobID), on: connection)
        }
        return ended
    }

    /// The payload prefix of a work-channel notification that revokes a job's leases: `revoke:<job id>`.
    package static let revokePrefix = "revoke:"
}
