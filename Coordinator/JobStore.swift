import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// Every statement the farm runs against PostgreSQL, the farm's only source of truth.
///
/// Times come from the database's clock (`now()`), never a coordinator's, so coordinators on several machines agree
/// on when a lease runs out. Values are bound by interpolation (`\(value)` is a bind parameter).
package struct JobStore: Sendable {
    package let client: PostgresClient
    package let logger: Logger

    package init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The channel idle agents' sessions wait on for new work.
    package static let workChannel = "farm_work"

    // MARK: Jobs

    package func submit(
        source: String,
        outputDirectory: String,
        settings: JobSettings,
        priority: Int = 0
    ) async throws -> Int64 {
        let settingsJSON = try String(decoding: JSONEncoder().encode(settings), as: UTF8.self)
        // Two jobs writing one folder at once would overwrite each other's segments: a folder belongs to one job
        // while it runs. Once it has ended (ready included), a new job may replace its output. The database enforces
        // it (the unique index `jobs_one_writer_per_output_dir`, migration 4); this statement gives the new job's id,
        // or names the running job that holds the folder. A submit racing another into the same folder fails the
        // index instead, and the next try finds the winner as the holder.
        for _ in 0..<3 {
            do {
                let rows = try await self.client.query(
                    """
                    WITH holder AS (
                        SELECT id, state FROM jobs
                        WHERE output_dir = \(outputDirectory) AND state IN ('submitted', 'running', 'stitching')
                        ORDER BY id LIMIT 1
                    ), inserted AS (
                        INSERT INTO jobs (source, output_dir, settings, priority, max_in_flight)
                        SELECT \(source), \(outputDirectory), \(settingsJSON)::jsonb, \(priority), \(settings.maxInFlight)
                        WHERE NOT EXISTS (SELECT 1 FROM holder)
                        RETURNING id
                    )
                    SELECT id, NULL::text FROM inserted UNION ALL SELECT id, state FROM holder
                    """,
                    logger: self.logger
                )
                for try await (id, holderState) in rows.decode((Int64, String?).self) {
                    if let holderState {
                        throw OutputFolderInUse(outputDirectory: outputDirectory, jobID: id, state: holderState)
                    }
                    _ = try await self.client.query(
                        "SELECT pg_notify(\(Self.workChannel), 'job')",
                        logger: self.logger
                    )
                    return id
                }
                throw ConfigurationError("inserting the job returned no id")
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                continue
            }
        }
        throw ConfigurationError(
            "the output folder \(outputDirectory) was claimed and released by other submits three times in a row; "
                + "submit again"
        )
    }

    /// A job was submitted into a folder that another job is still writing.
    package struct OutputFolderInUse: Error, CustomStringConvertible {
        package var outputDirectory: String
        package var jobID: Int64
        package var state: String
        package var description: String {
            "the output folder \(self.outputDirectory) is in use by job \(self.jobID) (\(self.state)); choose another "
                + "folder, or wait for job \(self.jobID) to end (or cancel it) to replace its output"
        }
    }

    package struct JobToPlan: Sendable {
        package var id: Int64
        package var source: String
        package var outputDirectory: String
        package var settings: JobSettings
    }

    package struct PlannedJob: Sendable {
        package var sourceInfo: JobSourceInfo
        package var renditions: [RenditionSpec]
        package var chunks: [PlannedChunk]
        package var videoStream: Int
        package var audioStream: Int?
        package var tasks: [(spec: TaskSpec, extract: SourceExtract, priority: Int)]
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
                SELECT id, source, output_dir, settings::text FROM jobs
                WHERE state = 'submitted' ORDER BY priority DESC, id
                FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: JobToPlan?
            for try await (id, source, output, settingsJSON) in rows.decode((Int64, String, String, String).self) {
                let settings = try JSONDecoder().decode(JobSettings.self, from: Data(settingsJSON.utf8))
                claimed = JobToPlan(id: id, source: source, outputDirectory: output, settings: settings)
            }
            guard let job = claimed else { return nil }
            let planned: PlannedJob
            do {
                planned = try await plan(job)
            } catch {
                let message = "\(error)"
                _ = try await connection.query(
                    """
                    UPDATE jobs SET state = 'failed', error = \(message), updated_at = now(), finished_at = now()
                    WHERE id = \(job.id)
                    """,
                    logger: self.logger
                )
                return (job.id, message)
            }
            let infoJSON = try String(decoding: JSONEncoder().encode(planned.sourceInfo), as: UTF8.self)
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
                let specJSON = try String(decoding: JSONEncoder().encode(task.spec), as: UTF8.self)
                let extractJSON = try String(decoding: JSONEncoder().encode(task.extract), as: UTF8.self)
                let chunkIndex: Int? = task.spec.kind == .video ? task.spec.chunkIndex : nil
                let end =
                    task.spec.endPTS
                    ?? (task.spec.originPTS + Int64(planned.sourceInfo.durationSeconds / task.spec.timeBase.doubleValue))
                let mediaSeconds = max(0, task.spec.timeBase.seconds(end - task.spec.startPTS))
                _ = try await connection.query(
                    """
                    INSERT INTO tasks (job_id, kind, chunk_index, spec, extract, priority, max_attempts, media_seconds)
                    VALUES (\(job.id), \(task.spec.kind.rawValue), \(chunkIndex), \(specJSON)::jsonb,
                            \(extractJSON)::jsonb, \(task.priority), \(job.settings.maxAttempts), \(mediaSeconds))
                    """,
                    logger: self.logger
                )
            }
            _ = try await connection.query(
                """
                UPDATE jobs SET state = 'running', source_info = \(infoJSON)::jsonb,
                    duration_seconds = \(planned.sourceInfo.durationSeconds), updated_at = now()
                WHERE id = \(job.id)
                """,
                logger: self.logger
            )
            _ = try await connection.query("SELECT pg_notify(\(Self.workChannel), 'tasks')", logger: self.logger)
            return (job.id, nil)
        }
    }

    /// Cancels a job: its queued and leased tasks are cancelled and the agents working on them are told to stop.
    /// Returns false when the job had already ended.
    package func cancel(jobID: Int64) async throws -> Bool {
        try await self.client.withTransaction(logger: self.logger) { connection in
            try await self.endJob(jobID, state: "cancelled", error: "cancelled by request", on: connection)
        }
    }

    package func status(jobID: Int64) async throws -> JobStatus? {
        let rows = try await self.client.query(
            """
            SELECT j.id, j.state, j.error, j.output_dir, j.duration_seconds,
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id),
                   (SELECT count(*) FROM tasks t WHERE t.job_id = j.id AND t.state = 'done'),
                   (SELECT coalesce(sum(s.duration::double precision * s.timebase_num / s.timebase_den), 0)
                      FROM segments s JOIN tasks t ON t.id = s.task_id
                     WHERE s.job_id = j.id AND t.kind = 'video'
                       AND s.rendition = (SELECT min(name) FROM renditions r WHERE r.job_id = j.id))
            FROM jobs j WHERE j.id = \(jobID)
            """,
            logger: self.logger
        )
        for try await (id, state, error, output, duration, total, done, seconds) in rows.decode(
            (Int64, String, String?, String, Double?, Int64, Int64, Double).self
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
        try await self.endJob(jobID, state: "failed", error: error, on: connection)
    }

    /// Ends a job that has not ended yet: its queued and leased tasks are cancelled, and a `revoke:<job>`
    /// notification (delivered at commit) makes every coordinator revoke the job's leases on its agents.
    private func endJob(
        _ jobID: Int64,
        state: String,
        error: String,
        on connection: PostgresConnection
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE jobs SET state = \(state), error = \(error), updated_at = now(), finished_at = now()
            WHERE id = \(jobID) AND state IN ('submitted', 'running', 'stitching') RETURNING id
            """,
            logger: self.logger
        )
        var ended = false
        for try await _ in rows.decode(Int64.self) { ended = true }
        if ended {
            _ = try await connection.query(
                "UPDATE tasks SET state = 'cancelled', lease_expires_at = NULL WHERE job_id = \(jobID) AND state IN ('queued', 'leased')",
                logger: self.logger
            )
            _ = try await connection.query(
                "SELECT pg_notify(\(Self.workChannel), \(Self.revokePrefix + String(jobID)))",
                logger: self.logger
            )
        }
        return ended
    }

    /// The payload prefix of a work-channel notification that revokes a job's leases: `revoke:<job id>`.
    package static let revokePrefix = "revoke:"

    // MARK: Leases

    /// Leases the best queued task to an agent, in one statement: the task is locked with SKIP LOCKED so concurrent
    /// coordinators never hand one task out twice, its attempt is counted now, and its fencing token is fresh from
    /// a sequence, so it is larger than every token issued before.
    package func lease(agentID: Int64, agentName: String, leaseSeconds: Double) async throws -> LeasedTask? {
        let rows = try await self.client.query(
            """
            WITH candidate AS (
                SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id
                WHERE t.state = 'queued' AND t.run_after <= now() AND j.state = 'running'
                  AND (j.max_in_flight = 0
                       OR (SELECT count(*) FROM tasks l WHERE l.job_id = t.job_id AND l.state = 'leased') < j.max_in_flight)
                ORDER BY j.priority DESC, t.priority DESC, t.job_id, t.id
                FOR UPDATE OF t SKIP LOCKED
                LIMIT 1
            )
            UPDATE tasks t SET state = 'leased', attempts = t.attempts + 1, lease_token = nextval('lease_tokens'),
                lease_owner = \(agentName), lease_agent_id = \(agentID),
                lease_expires_at = now() + make_interval(secs => \(leaseSeconds)),
                lease_deadline = now() + make_interval(secs => greatest(\(Self.minimumDeadlineSeconds), t.media_seconds * \(Self.deadlinePerMediaSecond)))
            FROM candidate, jobs j
            WHERE t.id = candidate.id AND j.id = t.job_id
            RETURNING t.id, t.lease_token, t.job_id, t.spec::text, t.extract::text, j.source, j.output_dir, t.attempts
            """,
            logger: self.logger
        )
        for try await (id, token, jobID, specJSON, extractJSON, source, output, attempts) in rows.decode(
            (Int64, Int64, Int64, String, String, String, String, Int).self
        ) {
            return LeasedTask(
                taskID: id,
                token: token,
                jobID: jobID,
                spec: try JSONDecoder().decode(TaskSpec.self, from: Data(specJSON.utf8)),
                extract: try JSONDecoder().decode(SourceExtract.self, from: Data(extractJSON.utf8)),
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
            UPDATE tasks SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_expires_at = NULL
            WHERE id = \(taskID) AND lease_token = \(token) AND state = 'leased'
            """,
            logger: self.logger
        )
        _ = try await self.client.query("SELECT pg_notify(\(Self.workChannel), 'released')", logger: self.logger)
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
            WHERE t.id = beat.id AND t.lease_token = beat.token AND t.state = 'leased' AND t.lease_deadline > now()
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

    /// Accepts a result only while `token` is the task's current lease: a compare-and-swap on the token. The
    /// segment rows are written and `publish` moves the files into place inside the same transaction, so an
    /// accepted result and its files go together. A report of a result that was already accepted is acknowledged
    /// without effect; anything else is stale.
    package func complete(
        taskID: Int64,
        token: Int64,
        agentName: String,
        coordinator: String,
        outputs: [OutputFile],
        publish: @Sendable () async throws -> Void
    ) async throws -> CompletionVerdict {
        do {
            return try await self.accept(taskID, token, agentName, coordinator, outputs, publish)
        } catch let error as PostgresTransactionError {
            // Rolled back: nothing of the result was written.
            guard let mismatch = error.closureError as? InitSegmentMismatch, error.rollbackError == nil else {
                throw error
            }
            return .refused(reason: mismatch.description)
        }
    }

    /// A result's init segment differs from the one accepted for another chunk of its rendition.
    struct InitSegmentMismatch: Error, CustomStringConvertible {
        var rendition: String
        var description: String {
            "the \(self.rendition) init segment differs from the one accepted for another chunk: agents must run the "
                + "same farm and libav versions for seamless output"
        }
    }

    /// `complete`'s transaction; throws `InitSegmentMismatch` (rolling everything back) for a foreign init segment.
    private func accept(
        _ taskID: Int64,
        _ token: Int64,
        _ agentName: String,
        _ coordinator: String,
        _ outputs: [OutputFile],
        _ publish: @Sendable () async throws -> Void
    ) async throws -> CompletionVerdict {
        try await self.client.withTransaction(logger: self.logger) { connection -> CompletionVerdict in
            let rows = try await connection.query(
                """
                UPDATE tasks SET state = 'done', accepted_token = lease_token, accepted_by = \(agentName),
                    done_at = now(), lease_expires_at = NULL
                WHERE id = \(taskID) AND lease_token = \(token) AND state = 'leased'
                RETURNING job_id
                """,
                logger: self.logger
            )
            var jobID: Int64?
            for try await id in rows.decode(Int64.self) { jobID = id }
            guard let jobID else {
                let current = try await connection.query(
                    "SELECT state, accepted_token, lease_token FROM tasks WHERE id = \(taskID)",
                    logger: self.logger
                )
                for try await (state, accepted, leased) in current.decode((String, Int64?, Int64?).self) {
                    if accepted == token { return .alreadyAccepted }
                    return .stale(
                        reason: "task \(taskID) is \(state) under lease token \(leased.map(String.init) ?? "none"), "
                            + "the result carries token \(token)"
                    )
                }
                return .stale(reason: "task \(taskID) does not exist")
            }
            _ = try await connection.query(
                "INSERT INTO task_results (task_id, token, agent, coordinator) VALUES (\(taskID), \(token), \(agentName), \(coordinator))",
                logger: self.logger
            )
            for output in outputs {
                switch output.role {
                case .initSegment:
                    // Every chunk of a rendition must bring the same init segment: the first accepted is kept, and
                    // a different one refuses the result. Compared inside this transaction, so two chunks accepted
                    // at once cannot both pass: the second insert waits for the first to commit, and the SELECT,
                    // a statement of its own, sees what it committed.
                    _ = try await connection.query(
                        """
                        INSERT INTO init_segments (job_id, rendition, sha256, bytes, path)
                        VALUES (\(jobID), \(output.rendition), \(output.sha256), \(output.bytes), \(output.path))
                        ON CONFLICT (job_id, rendition) DO NOTHING
                        """,
                        logger: self.logger
                    )
                    let kept = try await connection.query(
                        "SELECT sha256 FROM init_segments WHERE job_id = \(jobID) AND rendition = \(output.rendition)",
                        logger: self.logger
                    )
                    for try await hash in kept.decode(String.self) where hash != output.sha256 {
                        throw InitSegmentMismatch(rendition: output.rendition)
                    }
                case .segment:
                    _ = try await connection.query(
                        """
                        INSERT INTO segments (job_id, rendition, index, task_id, start_pts, duration, timebase_num,
                                              timebase_den, frames, bytes, sha256, path)
                        VALUES (\(jobID), \(output.rendition), \(output.segmentIndex ?? -1), \(taskID),
                                \(output.startPTS), \(output.duration), \(Int(output.timeBase.num)),
                                \(Int(output.timeBase.den)), \(output.frames), \(output.bytes), \(output.sha256),
                                \(output.path))
                        """,
                        logger: self.logger
                    )
                }
            }
            try await publish()
            let remaining = try await connection.query(
                "SELECT count(*) FROM tasks WHERE job_id = \(jobID) AND state <> 'done'",
                logger: self.logger
            )
            var left = 0
            for try await count in remaining.decode(Int64.self) { left = Int(count) }
            if left == 0 {
                _ = try await connection.query(
                    "UPDATE jobs SET state = 'stitching', updated_at = now() WHERE id = \(jobID) AND state = 'running'",
                    logger: self.logger
                )
                _ = try await connection.query("SELECT pg_notify(\(Self.workChannel), 'stitch')", logger: self.logger)
            }
            return .accepted(remainingTasks: left)
        }
    }

    /// Records a failed attempt under the current token. A retryable failure with attempts left goes back to the
    /// queue after an exponential backoff with jitter; otherwise the task fails and so does its job, with a report
    /// naming the chunk, the cause, the attempt and the agent. Returns the job's error when the job failed.
    package func fail(
        taskID: Int64,
        token: Int64,
        agentName: String,
        message: String,
        retryable: Bool
    ) async throws -> String? {
        try await self.client.withTransaction(logger: self.logger) { connection -> String? in
            let rows = try await connection.query(
                """
                UPDATE tasks SET
                    state = CASE WHEN \(retryable) AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                    last_error = \(message), lease_expires_at = NULL,
                    run_after = now() + make_interval(secs => least(30, power(2, attempts - 1)) * (0.75 + random() / 2))
                WHERE id = \(taskID) AND lease_token = \(token) AND state = 'leased'
                RETURNING job_id, state, attempts, max_attempts, spec::text
                """,
                logger: self.logger
            )
            for try await (jobID, state, attempts, maxAttempts, specJSON) in rows.decode(
                (Int64, String, Int, Int, String).self
            ) {
                guard state == "failed" else { return nil }
                let spec = try JSONDecoder().decode(TaskSpec.self, from: Data(specJSON.utf8))
                let report = Self.failureReport(
                    spec: spec,
                    message: message,
                    attempts: attempts,
                    maxAttempts: maxAttempts,
                    agent: agentName
                )
                try await self.failJob(jobID, error: report, on: connection)
                return report
            }
            return nil
        }
    }

    /// `chunk 17/120 [102.0 s–108.0 s]: <cause> (attempt 1/5, agent gpu-3)`.
    package static func failureReport(
        spec: TaskSpec,
        message: String,
        attempts: Int,
        maxAttempts: Int,
        agent: String
    ) -> String {
        let what: String
        switch spec.kind {
        case .audio:
            what = "audio track"
        case .video:
            let start = spec.timeBase.seconds(spec.startPTS - spec.originPTS)
            let end = spec.endPTS.map { String(format: "%.1f s", spec.timeBase.seconds($0 - spec.originPTS)) } ?? "end"
            what = "chunk \(spec.chunkIndex + 1)/\(spec.chunkCount) [\(String(format: "%.1f s", start))–\(end)]"
        }
        return "\(what): \(message) (attempt \(attempts)/\(maxAttempts), agent \(agent))"
    }

    package struct ReapedLease: Sendable {
        package var taskID: Int64
        package var jobID: Int64
        package var agent: String
        package var requeued: Bool
    }

    /// Returns expired leases to the queue (or fails them once attempts are spent). The state and expiry are checked
    /// again inside the UPDATE, so a lease renewed or completed meanwhile is left alone.
    package func reapExpiredLeases() async throws -> [ReapedLease] {
        try await self.client.withTransaction(logger: self.logger) { connection -> [ReapedLease] in
            let rows = try await connection.query(
                """
                WITH expired AS (
                    SELECT id FROM tasks WHERE state = 'leased' AND lease_expires_at < now()
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE tasks t SET
                    state = CASE WHEN t.attempts < t.max_attempts THEN 'queued' ELSE 'failed' END,
                    last_error = 'lease expired: agent ' || coalesce(t.lease_owner, '?') || ' stopped responding',
                    lease_expires_at = NULL,
                    run_after = now() + make_interval(secs => least(30, power(2, t.attempts - 1)) * (0.75 + random() / 2))
                FROM expired
                WHERE t.id = expired.id AND t.state = 'leased' AND t.lease_expires_at < now()
                RETURNING t.id, t.job_id, coalesce(t.lease_owner, '?'), t.state, t.attempts, t.max_attempts, t.spec::text
                """,
                logger: self.logger
            )
            var reaped: [ReapedLease] = []
            var failures: [(Int64, String)] = []
            for try await (taskID, jobID, agent, state, attempts, maxAttempts, specJSON) in rows.decode(
                (Int64, Int64, String, String, Int, Int, String).self
            ) {
                reaped.append(ReapedLease(taskID: taskID, jobID: jobID, agent: agent, requeued: state == "queued"))
                if state == "failed" {
                    let spec = try JSONDecoder().decode(TaskSpec.self, from: Data(specJSON.utf8))
                    failures.append(
                        (
                            jobID,
                            Self.failureReport(
                                spec: spec,
                                message: "the agent stopped responding and its lease expired",
                                attempts: attempts,
                                maxAttempts: maxAttempts,
                                agent: agent
                            )
                        )
                    )
                }
            }
            for (jobID, report) in failures { try await self.failJob(jobID, error: report, on: connection) }
            if reaped.contains(where: \.requeued) {
                _ = try await connection.query("SELECT pg_notify(\(Self.workChannel), 'reaped')", logger: self.logger)
            }
            return reaped
        }
    }

    // MARK: Stitching

    package struct JobToStitch: Sendable {
        package var id: Int64
        package var source: String
        package var outputDirectory: String
        package var sourceInfo: JobSourceInfo
        package var renditions: [RenditionSpec]
        package var segments: [OutputFile]
        package var initSegments: [String: String]
        package var container: SegmentContainer = .fmp4
        /// The job's encoder settings: the audio's sample rate and channels the stitcher checks the output against.
        package var encoder: EncoderSettings = .default
    }

    /// Hands to the stitcher every running job whose tasks are all done. A completion does this itself when it
    /// sees no task left, but two last completions committed at once through two connections each see the other's
    /// task still leased; this sweep (each stitcher round) catches that case.
    @discardableResult
    package func promoteFinishedJobs() async throws -> Int {
        let rows = try await self.client.query(
            """
            UPDATE jobs j SET state = 'stitching', updated_at = now()
            WHERE j.state = 'running' AND EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id)
              AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = j.id AND t.state <> 'done')
            RETURNING j.id
            """,
            logger: self.logger
        )
        var promoted = 0
        for try await _ in rows.decode(Int64.self) { promoted += 1 }
        return promoted
    }

    /// Claims one job whose tasks are all done, runs `stitch` while holding its row, then marks it ready, or failed
    /// with the stitcher's error. Returns the job's id and error, or nil when none waits.
    package func stitchNextJob(
        _ stitch: @Sendable (JobToStitch) async throws -> Void
    ) async throws -> (id: Int64, error: String?)? {
        try await self.client.withTransaction(logger: self.logger) { connection -> (id: Int64, error: String?)? in
            let rows = try await connection.query(
                """
                SELECT id, source, output_dir, source_info::text, settings::text FROM jobs WHERE state = 'stitching'
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: (Int64, String, String, JobSourceInfo, JobSettings)?
            for try await (id, source, output, infoJSON, settingsJSON) in rows.decode(
                (Int64, String, String, String, String).self
            ) {
                claimed = (
                    id, source, output, try JSONDecoder().decode(JobSourceInfo.self, from: Data(infoJSON.utf8)),
                    try JSONDecoder().decode(JobSettings.self, from: Data(settingsJSON.utf8))
                )
            }
            guard let (jobID, source, output, info, settings) = claimed else { return nil }
            var renditions: [RenditionSpec] = []
            for try await (name, width, height, bitrate) in try await connection.query(
                "SELECT name, width, height, max_bitrate FROM renditions WHERE job_id = \(jobID) ORDER BY height",
                logger: self.logger
            ).decode((String, Int, Int, Int).self) {
                renditions.append(RenditionSpec(name: name, width: width, height: height, maxBitrate: bitrate))
            }
            var segments: [OutputFile] = []
            for try await (rendition, index, start, duration, num, den, frames, bytes, hash, path)
                in try await connection
                .query(
                    """
                    SELECT rendition, index, start_pts, duration, timebase_num, timebase_den, frames, bytes, sha256, path
                    FROM segments WHERE job_id = \(jobID) ORDER BY rendition, index
                    """,
                    logger: self.logger
                ).decode((String, Int, Int64, Int64, Int, Int, Int, Int64, String, String).self)
            {
                segments.append(
                    OutputFile(
                        rendition: rendition,
                        role: .segment,
                        segmentIndex: index,
                        path: path,
                        bytes: bytes,
                        sha256: hash,
                        startPTS: start,
                        duration: duration,
                        frames: frames,
                        timeBase: Rational(Int32(num), Int32(den))
                    )
                )
            }
            var inits: [String: String] = [:]
            for try await (rendition, path) in try await connection.query(
                "SELECT rendition, path FROM init_segments WHERE job_id = \(jobID)",
                logger: self.logger
            ).decode((String, String).self) {
                inits[rendition] = path
            }
            let job = JobToStitch(
                id: jobID,
                source: source,
                outputDirectory: output,
                sourceInfo: info,
                renditions: renditions,
                segments: segments,
                initSegments: inits,
                container: settings.container,
                encoder: settings.encoder
            )
            do {
                try await stitch(job)
            } catch {
                let message = "stitching failed: \(error)"
                try await self.failJob(jobID, error: message, on: connection)
                return (jobID, message)
            }
            _ = try await connection.query(
                "UPDATE jobs SET state = 'ready', updated_at = now(), finished_at = now() WHERE id = \(jobID)",
                logger: self.logger
            )
            return (jobID, nil)
        }
    }

    // MARK: Cleanup

    /// Claims one failed or cancelled job whose partial output is still on disk, runs `remove` with its output
    /// folder and the files its accepted results published, and marks it cleaned. Nothing can publish into a job
    /// once it has ended (completion requires a leased task), so the files listed are all there will be.
    package func cleanNextEndedJob(
        _ remove: @Sendable (_ outputDirectory: String, _ publishedFiles: [String]) async throws -> Void
    ) async throws -> Int64? {
        try await self.client.withTransaction(logger: self.logger) { connection -> Int64? in
            let rows = try await connection.query(
                """
                SELECT id, output_dir FROM jobs WHERE state IN ('failed', 'cancelled') AND cleaned_at IS NULL
                ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1
                """,
                logger: self.logger
            )
            var claimed: (Int64, String)?
            for try await row in rows.decode((Int64, String).self) { claimed = row }
            guard let (jobID, output) = claimed else { return nil }
            // A later job already writes this folder (a resubmission): its files have the same names, so nothing
            // here is this job's any more.
            var reused = false
            for try await exists in try await connection.query(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE output_dir = \(output) AND id > \(jobID))",
                logger: self.logger
            ).decode(Bool.self) {
                reused = exists
            }
            if !reused {
                var files: [String] = []
                for try await path in try await connection.query(
                    """
                    SELECT path FROM segments WHERE job_id = \(jobID)
                    UNION SELECT path FROM init_segments WHERE job_id = \(jobID)
                    """,
                    logger: self.logger
                ).decode(String.self) {
                    files.append(path)
                }
                try await remove(output, files)
            }
            _ = try await connection.query(
                "UPDATE jobs SET cleaned_at = now() WHERE id = \(jobID)",
                logger: self.logger
            )
            return jobID
        }
    }

    // MARK: Agents

    package func registerAgent(
        name: String,
        capabilities: FarmMessage.Capabilities,
        coordinator: String
    ) async throws -> Int64 {
        let json = try String(decoding: JSONEncoder().encode(capabilities), as: UTF8.self)
        let rows = try await self.client.query(
            """
            INSERT INTO agents (name, capabilities, slots, state, coordinator, last_seen)
            VALUES (\(name), \(json)::jsonb, \(capabilities.slots), 'active', \(coordinator), now())
            ON CONFLICT (name) DO UPDATE SET capabilities = EXCLUDED.capabilities, slots = EXCLUDED.slots,
                state = 'active', coordinator = EXCLUDED.coordinator, last_seen = now()
            RETURNING id
            """,
            logger: self.logger
        )
        for try await id in rows.decode(Int64.self) { return id }
        throw ConfigurationError("registering agent \(name) returned no id")
    }

    package func touchAgent(id: Int64) async throws {
        _ = try await self.client.query("UPDATE agents SET last_seen = now() WHERE id = \(id)", logger: self.logger)
    }
}
