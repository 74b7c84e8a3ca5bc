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
