import Logging
import PostgresNIO

/// The database schema, as numbered migrations applied in order, each once, in its own transaction.
///
/// Several coordinators may start at once against one database: an advisory lock makes them take turns.
package enum Migrations {
    package static let all: [(version: Int, name: String, sql: [String])] = [
        (
            1, "initial schema",
            [
                "CREATE SEQUENCE lease_tokens AS bigint",
                """
                CREATE TABLE jobs (
                    id bigserial PRIMARY KEY,
                    state text NOT NULL DEFAULT 'submitted'
                        CHECK (state IN ('submitted', 'running', 'stitching', 'ready', 'failed', 'cancelled')),
                    source text NOT NULL,
                    output_dir text NOT NULL,
                    settings jsonb NOT NULL,
                    priority integer NOT NULL DEFAULT 0,
                    source_info jsonb,
                    duration_seconds double precision,
                    error text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    finished_at timestamptz
                )
                """,
                "CREATE INDEX jobs_by_state ON jobs (state, priority DESC, id)",
                """
                CREATE TABLE renditions (
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    name text NOT NULL,
                    width integer NOT NULL,
                    height integer NOT NULL,
                    max_bitrate integer NOT NULL,
                    codec text NOT NULL,
                    PRIMARY KEY (job_id, name)
                )
                """,
                """
                CREATE TABLE chunks (
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    index integer NOT NULL,
                    start_pts bigint NOT NULL,
                    end_pts bigint,
                    preroll_pts bigint NOT NULL,
                    first_packet integer NOT NULL,
                    last_packet integer NOT NULL,
                    frame_count integer NOT NULL,
                    segment_starts bigint[] NOT NULL,
                    first_segment integer NOT NULL,
                    PRIMARY KEY (job_id, index)
                )
                """,
                """
                CREATE TABLE tasks (
                    id bigserial PRIMARY KEY,
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    kind text NOT NULL CHECK (kind IN ('video', 'audio')),
                    chunk_index integer,
                    spec jsonb NOT NULL,
                    state text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'leased', 'done', 'failed', 'cancelled')),
                    priority integer NOT NULL DEFAULT 0,
                    attempts integer NOT NULL DEFAULT 0,
                    max_attempts integer NOT NULL DEFAULT 5,
                    lease_owner text,
                    lease_agent_id bigint,
                    lease_token bigint,
                    lease_expires_at timestamptz,
                    accepted_token bigint,
                    accepted_by text,
                    run_after timestamptz NOT NULL DEFAULT now(),
                    last_error text,
                    done_at timestamptz
                )
                """,
                "CREATE INDEX tasks_queue ON tasks (priority DESC, job_id, id) WHERE state = 'queued'",
                "CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state = 'leased'",
                "CREATE INDEX tasks_by_job ON tasks (job_id, state)",
                // Lease churn updates these rows often: vacuum them sooner than the default 20% of dead rows.
                "ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05)",
                """
                CREATE TABLE segments (
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    rendition text NOT NULL,
                    index integer NOT NULL,
                    task_id bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
                    start_pts bigint NOT NULL,
                    duration bigint NOT NULL,
                    timebase_num integer NOT NULL,
                    timebase_den integer NOT NULL,
                    frames integer NOT NULL,
                    bytes bigint NOT NULL,
                    sha256 text NOT NULL,
                    path text NOT NULL,
                    PRIMARY KEY (job_id, rendition, index)
                )
                """,
                """
                CREATE TABLE init_segments (
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    rendition text NOT NULL,
                    sha256 text NOT NULL,
                    bytes bigint NOT NULL,
                    path text NOT NULL,
                    PRIMARY KEY (job_id, rendition)
                )
                """,
                """
                CREATE TABLE agents (
                    id bigserial PRIMARY KEY,
                    name text NOT NULL UNIQUE,
                    capabilities jsonb NOT NULL,
                    slots integer NOT NULL,
                    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'draining', 'gone')),
                    coordinator text,
                    first_seen timestamptz NOT NULL DEFAULT now(),
                    last_seen timestamptz NOT NULL DEFAULT now()
                )
                """,
            ]
        ),
        (
            // IF NOT EXISTS: databases made by development builds of version 1 may have some of these already.
            2, "lease deadlines, in-flight cap, source extracts, accepted results audit",
            [
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS max_in_flight integer NOT NULL DEFAULT 0",
                "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS extract jsonb NOT NULL DEFAULT '{}'::jsonb",
                "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS lease_deadline timestamptz",
                "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS media_seconds double precision NOT NULL DEFAULT 0",
                // One row per accepted result, never updated: the audit trail that shows no task was accepted twice.
                """
                CREATE TABLE IF NOT EXISTS task_results (
                    task_id bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
                    token bigint NOT NULL,
                    agent text NOT NULL,
                    coordinator text NOT NULL,
                    accepted_at timestamptz NOT NULL DEFAULT now()
                )
                """,
            ]
        ),
        (
            3, "cleanup of ended jobs",
            [
                // Set once the partial output of a failed or cancelled job has been removed.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS cleaned_at timestamptz"
            ]
        ),
        (
            4, "one running job per output folder, enforced",
            [
                // Two submits at once could both pass the check in `JobStore.submit` before this index existed; the
                // later of any such pair is failed here, so the index can be built.
                """
                WITH later AS (
                    SELECT j.id FROM jobs j
                    WHERE j.state IN ('submitted', 'running', 'stitching')
                      AND EXISTS (SELECT 1 FROM jobs o WHERE o.output_dir = j.output_dir AND o.id < j.id
                                  AND o.state IN ('submitted', 'running', 'stitching'))
                ), failed AS (
                    UPDATE jobs SET state = 'failed', updated_at = now(), finished_at = now(),
                        error = 'another job was writing the same output folder (found by database migration 4); '
                            || 'submit it again once that job has ended'
                    WHERE id IN (SELECT id FROM later)
                )
                UPDATE tasks SET state = 'cancelled', lease_expires_at = NULL
                WHERE job_id IN (SELECT id FROM later) AND state IN ('queued', 'leased')
                """,
                """
                CREATE UNIQUE INDEX jobs_one_writer_per_output_dir ON jobs (output_dir)
                WHERE state IN ('submitted', 'running', 'stitching')
                """,
            ]
        ),
        (
            5, "thumbnails made while the job encodes",
            [
                // Set once the poster and thumbnails are in the output folder; the stitch waits for it. A job
                // stitching when this is applied has none yet (the stitch used to make them): it gets them first.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS thumbnails_done boolean NOT NULL DEFAULT false",
                "UPDATE jobs SET thumbnails_done = true WHERE state = 'ready'",
                // A coordinator making them holds the job until then; if it dies, another takes the job after.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS thumbnails_claimed_until timestamptz",
            ]
        ),
        (
            6, "the queue in lease order",
            [
                // A lease takes the queued task of the highest job priority, then task priority (`JobStore.lease`).
                // With the job's priority only on the job, no index gave that order and every lease sorted the whole
                // queue (72 leases a second on 2 cores with 20,000 queued tasks). A job's priority is set once, at
                // submission, so its tasks carry a copy and the index holds the order itself.
                "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS job_priority integer NOT NULL DEFAULT 0",
                "UPDATE tasks t SET job_priority = j.priority FROM jobs j WHERE j.id = t.job_id AND j.priority <> 0",
                "DROP INDEX IF EXISTS tasks_queue",
                "CREATE INDEX tasks_queue ON tasks (job_priority DESC, priority DESC, job_id, id) WHERE state = 'queued'",
            ]
        ),
        (
            7, "API keys and tenants",
            [
                // An API key is shown once, at creation; only its SHA-256 is kept (a key is 256 random bits, so a
                // fast hash is enough: nobody can guess one from its hash). `prefix` names it in listings.
                """
                CREATE TABLE IF NOT EXISTS api_keys (
                    id bigserial PRIMARY KEY,
                    tenant text NOT NULL,
                    prefix text NOT NULL,
                    key_hash bytea NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    revoked_at timestamptz
                )
                """,
                // The tenant whose key submitted the job; NULL for jobs submitted with the command line (`farm
                // submit`), which no API key sees.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS tenant text",
                "CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, id DESC) WHERE tenant IS NOT NULL",
            ]
        ),
        (
            8, "idempotency keys and retries of API jobs",
            [
                // The `Idempotency-Key` a tenant's POST /v1/jobs carried, and the SHA-256 of what it asked: a
                // retried POST with the same key finds the job instead of making a second one (`JobStore.submit`).
                // The key lasts as long as the job's row.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS idempotency_key text",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS request_hash bytea",
                """
                CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency_key ON jobs (tenant, idempotency_key)
                WHERE idempotency_key IS NOT NULL
                """,
                // The failed or cancelled job this one runs again (POST /v1/jobs/{id}/retry).
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS retry_of bigint REFERENCES jobs (id) ON DELETE SET NULL",
            ]
        ),
        (
            9, "tus uploads",
            [
                // A tenant's resumable upload (API/UploadsController.swift): `received` bytes of `length` are in the
                // file at `path`, fsynced before they were counted. Expired uploads go with the janitor, once the job
                // made from them (their source) has ended.
                """
                CREATE TABLE IF NOT EXISTS uploads (
                    id text PRIMARY KEY,
                    tenant text NOT NULL,
                    length bigint NOT NULL CHECK (length >= 0),
                    received bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= length),
                    metadata text NOT NULL DEFAULT '',
                    path text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    completed_at timestamptz,
                    job_id bigint REFERENCES jobs (id) ON DELETE SET NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (expires_at)",
            ]
        ),
        (
            10, "URL sources and the client's metadata",
            [
                // A job whose video the coordinator fetches (API/SourceFetcher.swift) into `source` before it can be
                // planned: the planner takes it once `source_fetched_at` is set. A fetch is leased like a task
                // (`fetch_leased_until`), so a coordinator that dies mid-fetch leaves it to another.
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS source_url text",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS source_fetched_at timestamptz",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS fetch_leased_until timestamptz",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS fetch_attempts integer NOT NULL DEFAULT 0",
                // The client's own JSON, given back as it came (size-limited by the API).
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS metadata jsonb",
                // Where and with what secret the job's webhooks are signed and sent (API/WebhookSender.swift).
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS webhook_url text",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS webhook_secret text",
            ]
        ),
        (
            11, "job events",
            [
                // What `GET /v1/jobs/{id}/events` streams: a row per state change and per task done of an API job,
                // written by triggers, so that no code path that moves a job can forget one. Rows of one job are
                // inserted in commit order (the triggers take the job's advisory lock, held to commit): a reader
                // that has seen event n has seen every event of that job before n, so resuming after
                // `Last-Event-ID` misses none. Each insert NOTIFYs `farm_api` with `events:<job>`.
                """
                CREATE TABLE IF NOT EXISTS job_events (
                    id bigserial PRIMARY KEY,
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    kind text NOT NULL,
                    data jsonb NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, id)",
                """
                CREATE OR REPLACE FUNCTION farm_job_progress(job bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
                    WITH counts AS (
                        SELECT count(*) FILTER (WHERE state = 'done') AS done, count(*) AS total
                        FROM tasks WHERE job_id = job
                    ), started AS (
                        SELECT min(created_at) AS at FROM job_events
                        WHERE job_id = job AND kind = 'state' AND data->>'state' = 'running'
                    ), figures AS (
                        SELECT c.done, c.total, j.duration_seconds,
                               CASE WHEN c.total = 0 THEN 0 ELSE c.done::double precision / c.total END AS fraction,
                               CASE WHEN s.at IS NULL THEN NULL
                                    ELSE greatest(extract(epoch FROM clock_timestamp() - s.at), 0.001) END AS elapsed
                        FROM counts c, started s, jobs j WHERE j.id = job
                    )
                    SELECT jsonb_build_object(
                        'tasksDone', done, 'tasksTotal', total,
                        'percent', round((fraction * 100)::numeric, 1),
                        'speed', CASE WHEN elapsed IS NULL OR duration_seconds IS NULL THEN NULL
                                      ELSE round((fraction * duration_seconds / elapsed)::numeric, 3) END,
                        'etaSeconds', CASE WHEN elapsed IS NULL OR fraction = 0 THEN NULL
                                           ELSE round((elapsed * (1 - fraction) / fraction)::numeric, 1) END
                    ) FROM figures
                $$
                """,
                """
                CREATE OR REPLACE FUNCTION farm_record_job_event(job bigint, event_kind text, event_data jsonb)
                RETURNS void LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_advisory_xact_lock(74003, (job % 2147483647)::integer);
                    INSERT INTO job_events (job_id, kind, data) VALUES (job, event_kind, event_data);
                    PERFORM pg_notify('farm_api', 'events:' || job);
                END
                $$
                """,
                """
                CREATE OR REPLACE FUNCTION farm_job_state_event() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
                        PERFORM farm_record_job_event(
                            NEW.id, 'state', jsonb_strip_nulls(jsonb_build_object('state', NEW.state, 'error', NEW.error)));
                    END IF;
                    RETURN NULL;
                END
                $$
                """,
                "DROP TRIGGER IF EXISTS jobs_state_events ON jobs",
                """
                CREATE TRIGGER jobs_state_events AFTER INSERT OR UPDATE OF state ON jobs
                FOR EACH ROW WHEN (NEW.tenant IS NOT NULL) EXECUTE FUNCTION farm_job_state_event()
                """,
                """
                CREATE OR REPLACE FUNCTION farm_task_done_event() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id AND tenant IS NOT NULL) THEN
                        -- The lock first: the counts then include every task done before.
                        PERFORM pg_advisory_xact_lock(74003, (NEW.job_id % 2147483647)::integer);
                        PERFORM farm_record_job_event(NEW.job_id, 'progress', farm_job_progress(NEW.job_id));
                    END IF;
                    RETURN NULL;
                END
                $$
                """,
                "DROP TRIGGER IF EXISTS tasks_done_events ON tasks",
                """
                CREATE TRIGGER tasks_done_events AFTER UPDATE OF state ON tasks
                FOR EACH ROW WHEN (NEW.state = 'done' AND OLD.state IS DISTINCT FROM 'done')
                EXECUTE FUNCTION farm_task_done_event()
                """,
            ]
        ),
        (
            12, "webhook deliveries",
            [
                // One delivery per job that reached ready or failed with a webhook URL, made by a trigger in the
                // transaction that ended the job; sent by one coordinator at a time (`leased_until`), retried with
                // backoff until `give_up_at` (API/WebhookSender.swift). `body` is fixed at the first attempt, so
                // every attempt carries the same bytes.
                """
                CREATE TABLE IF NOT EXISTS webhook_deliveries (
                    id bigserial PRIMARY KEY,
                    job_id bigint NOT NULL REFERENCES jobs ON DELETE CASCADE,
                    event text NOT NULL,
                    url text NOT NULL,
                    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                    body bytea,
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    leased_until timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    give_up_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
                    finished_at timestamptz
                )
                """,
                "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending'",
                "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_job ON webhook_deliveries (job_id, id)",
                """
                CREATE TABLE IF NOT EXISTS webhook_attempts (
                    delivery_id bigint NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
                    attempt integer NOT NULL,
                    started_at timestamptz NOT NULL,
                    duration_ms integer NOT NULL,
                    status integer,
                    error text,
                    response_excerpt text,
                    PRIMARY KEY (delivery_id, attempt)
                )
                """,
                """
                CREATE OR REPLACE FUNCTION farm_webhook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN ('ready', 'failed') THEN
                        INSERT INTO webhook_deliveries (job_id, event, url) VALUES (NEW.id, 'job.' || NEW.state, NEW.webhook_url);
                        PERFORM pg_notify('farm_api', 'webhooks');
                    END IF;
                    RETURN NULL;
                END
                $$
                """,
                "DROP TRIGGER IF EXISTS jobs_webhook_deliveries ON jobs",
                """
                CREATE TRIGGER jobs_webhook_deliveries AFTER UPDATE OF state ON jobs
                FOR EACH ROW WHEN (NEW.webhook_url IS NOT NULL) EXECUTE FUNCTION farm_webhook_delivery()
                """,
            ]
        ),
        (
            13, "api key quotas",
            [
                // Caps of one key (NULL: the coordinator's defaults, `--key-max-jobs-in-flight` and
                // `--key-max-uploads`), and the key that made each API job and upload, so the caps count what it has
                // open (docs/api.md, "Limits"). Keys are revoked, never deleted, so the references hold.
                "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS max_jobs_in_flight integer CHECK (max_jobs_in_flight > 0)",
                "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS max_uploads integer CHECK (max_uploads > 0)",
                "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS api_key_id bigint REFERENCES api_keys",
                "ALTER TABLE uploads ADD COLUMN IF NOT EXISTS api_key_id bigint REFERENCES api_keys",
                """
                CREATE INDEX IF NOT EXISTS jobs_in_flight_by_key ON jobs (api_key_id)
                WHERE api_key_id IS NOT NULL AND state IN ('submitted', 'running', 'stitching')
                """,
                """
                CREATE INDEX IF NOT EXISTS uploads_open_by_key ON uploads (api_key_id)
                WHERE api_key_id IS NOT NULL AND completed_at IS NULL
                """,
            ]
        ),
        (
            14, "agents seen and steered",
            [
                // The agent process each row's sessions belong to (`Capabilities.instance`): another process with the
                // name is refused while this one is connected. `last_seen` is kept fresh by the coordinator holding
                // its sessions (`AgentPresenceService`); a row not seen for a while is gone whatever its state says.
                "ALTER TABLE agents ADD COLUMN IF NOT EXISTS instance text",
                "ALTER TABLE agents ADD COLUMN IF NOT EXISTS version text",
                "ALTER TABLE agents ADD COLUMN IF NOT EXISTS drain_requested_at timestamptz",
                // When the task was leased, so an accepted result knows how long its encode took: an agent's speed
                // (× realtime) is its tasks' media seconds over their seconds from lease to acceptance.
                "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS leased_at timestamptz",
                "ALTER TABLE task_results ADD COLUMN IF NOT EXISTS seconds double precision",
                "ALTER TABLE task_results ADD COLUMN IF NOT EXISTS media_seconds double precision",
                "CREATE INDEX IF NOT EXISTS task_results_by_agent ON task_results (agent, accepted_at DESC)",
            ]
        ),
    ]

    /// The newest schema version this build knows.
    package static var latestVersion: Int { self.all.map(\.version).max() ?? 0 }

    /// Whether the database's schema is the one this build knows (`/readyz`): every migration applied.
    package static func isCurrent(_ client: PostgresClient, logger: Logger) async throws -> Bool {
        let rows = try await client.query("SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger)
        for try await version in rows.decode(Int.self) {
            return version == self.latestVersion
        }
        return false
    }

    /// Applies every migration not applied yet (up to `version`, for tests of upgrades). Refuses a database whose
    /// schema is newer than this build knows.
    package static func migrate(_ client: PostgresClient, logger: Logger, upTo version: Int = .max) async throws {
        try await self.checkReachable(client, logger: logger)
        try await client.withConnection { connection in
            // One coordinator migrates at a time; the lock is released when the session's connection returns.
            _ = try await connection.query("SELECT pg_advisory_lock(7400274001)", logger: logger)
            do {
                _ = try await connection.query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                    logger: logger
                )
                var applied = Set<Int>()
                for try await version in try await connection.query(
                    "SELECT version FROM schema_migrations",
                    logger: logger
                )
                .decode(Int.self) {
                    applied.insert(version)
                }
                let known = self.latestVersion
                if let newest = applied.max(), newest > known {
                    throw DatabaseUnreachable(
                        cause:
                            "the database schema is at version \(newest), this farm knows up to \(known): upgrade farm "
                            + "on this machine to the version the other coordinators run"
                    )
                }
                for migration in self.all where !applied.contains(migration.version) && migration.version <= version {
                    logger.info(
                        "applying database migration",
                        metadata: ["version": "\(migration.version)", "name": "\(migration.name)"]
                    )
                    try await connection.withTransaction(logger: logger) { connection in
                        for statement in migration.sql {
                            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        _ = try await connection.query(
                            "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                            logger: logger
                        )
                    }
                }
                _ = try await connection.query("SELECT pg_advisory_unlock(7400274001)", logger: logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7400274001)", logger: logger)
                throw error
            }
        }
    }

    /// Returns once the database's schema is this build's: a service beside the coordinator, started with it,
    /// waits for its migration instead of failing its first rounds on tables that are not there yet.
    package static func waitUntilCurrent(_ client: PostgresClient, logger: Logger) async throws {
        while !((try? await self.isCurrent(client, logger: logger)) ?? false) {
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Fails within `timeout` with the server's own message when PostgreSQL cannot be reached, instead of letting
    /// the pool retry in silence.
    package static func checkReachable(
        _ client: PostgresClient,
        logger: Logger,
        timeout: Duration = .seconds(15)
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = try await client.query("SELECT 1", logger: logger)
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw DatabaseUnreachable(cause: "no connection within \(timeout)")
            }
            defer { group.cancelAll() }
            do {
                try await group.next()
            } catch let error as DatabaseUnreachable {
                throw error
            } catch {
                throw DatabaseUnreachable(cause: String(reflecting: error))
            }
        }
    }
}

/// PostgreSQL could not be reached or refused the connection.
package struct DatabaseUnreachable: Error, CustomStringConvertible {
    package var cause: String
    package var description: String {
        "cannot use PostgreSQL: \(self.cause); check --database-url (host, port, database name, user) and that the server runs"
    }
}
