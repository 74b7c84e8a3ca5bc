import Foundation

// The ceiling: pgbench driving the coordinator's own lease and complete statements (copied from
// Coordinator/JobStore+Leases.swift and Coordinator/JobStore+Results.swift, one 240p segment and one init segment
// per result as the simulated runs send) against a copy of the farm's database with its schema and jobs.

struct PgbenchResult: Codable {
    var clients: Int
    var transactions: Int
    var transactionsPerSecond: Double
    var latencyAverageMs: Double
    var command: String
    var script: String
}

let pgbenchScript = """
    \\set agent random(1, 800)
    WITH candidate AS (
        SELECT t.id FROM tasks t JOIN jobs j ON j.id = t.job_id
        WHERE t.state = 'queued' AND t.run_after <= now() AND j.state = 'running'
          AND (j.max_in_flight = 0
               OR (SELECT count(*) FROM tasks l WHERE l.job_id = t.job_id AND l.state = 'leased') < j.max_in_flight)
        ORDER BY t.job_priority DESC, t.priority DESC, t.job_id, t.id
        FOR UPDATE OF t SKIP LOCKED
        LIMIT 1
    )
    UPDATE tasks t SET state = 'leased', attempts = t.attempts + 1, lease_token = nextval('lease_tokens'),
        lease_owner = 'pgbench-' || :agent, lease_agent_id = :agent,
        lease_expires_at = now() + make_interval(secs => 30),
        lease_deadline = now() + make_interval(secs => greatest(600, t.media_seconds * 60))
    FROM candidate, jobs j
    WHERE t.id = candidate.id AND j.id = t.job_id
    RETURNING t.id AS task, t.lease_token AS token, t.job_id AS job \\gset
    BEGIN;
    UPDATE tasks SET state = 'done', accepted_token = lease_token, accepted_by = 'pgbench-' || :agent,
        done_at = now(), lease_expires_at = NULL
    WHERE id = :task AND lease_token = :token AND state = 'leased'
    RETURNING job_id;
    INSERT INTO task_results (task_id, token, agent, coordinator) VALUES (:task, :token, 'pgbench-' || :agent, 'pgbench');
    INSERT INTO init_segments (job_id, rendition, sha256, bytes, path)
    VALUES (:job, '240p', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 900, '240p/init.mp4')
    ON CONFLICT (job_id, rendition) DO NOTHING;
    SELECT sha256 FROM init_segments WHERE job_id = :job AND rendition = '240p';
    INSERT INTO segments (job_id, rendition, index, task_id, start_pts, duration, timebase_num, timebase_den, frames,
                          bytes, sha256, path)
    VALUES (:job, '240p', :task, :task, 0, 92160, 1, 15360, 180, 40000,
            'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '240p/segment_00000.m4s');
    SELECT count(*) FROM tasks WHERE job_id = :job AND state <> 'done';
    COMMIT;

    """

/// Copies the farm's database (schema, jobs, tasks), requeues enough tasks for the whole pgbench run, and runs it.
/// The coordinator must be stopped (a template database has no other sessions).
func runPgbench(database: Database, quick: Bool, work: URL) throws -> PgbenchResult {
    let clients = 10
    let perClient = quick ? 300 : 2000
    let server = database.url[..<database.url.lastIndex(of: "/")!]
    let copy = Database(url: server + "/farm_pgbench")
    // Not connected to the database being copied: a template must have no other sessions.
    let admin = Database(url: server + "/template1")
    let name = database.url[database.url.index(after: database.url.lastIndex(of: "/")!)...]
    _ = try admin.rows("DROP DATABASE IF EXISTS farm_pgbench")
    // A backend of the stopped coordinator can outlive it by a moment (it ends when it reads the closed socket),
    // and a template with a session cannot be copied: those still there are ended, and the copy retried briefly.
    for attempt in 1...20 {
        _ = try admin.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(name)' AND pid <> pg_backend_pid()"
        )
        do {
            _ = try admin.rows("CREATE DATABASE farm_pgbench TEMPLATE \(name)")
            break
        } catch  where attempt < 20 {
            Thread.sleep(forTimeInterval: 0.5)
        }
    }
    // Enough queued tasks that no client runs dry (a lease with no row ends a pgbench client), spread over jobs.
    _ = try copy.rows(
        """
        DELETE FROM segments; DELETE FROM init_segments; DELETE FROM task_results;
        UPDATE jobs SET state = 'running';
        INSERT INTO tasks (job_id, kind, chunk_index, spec, extract, media_seconds)
        SELECT job_id, kind, chunk_index, spec, extract, media_seconds FROM tasks, generate_series(1, 1 + \(clients * perClient) / greatest(1, (SELECT count(*) FROM tasks))::int);
        UPDATE tasks SET state = 'queued', attempts = 0, lease_token = NULL, lease_expires_at = NULL,
            accepted_token = NULL, run_after = now() - interval '1 second';
        """
    )
    // Alone: psql runs one -c's statements in one transaction, and VACUUM refuses to run inside one.
    _ = try copy.rows("VACUUM ANALYZE")
    let scriptPath = work.appendingPathComponent("lease-complete.pgbench").path
    try pgbenchScript.write(toFile: scriptPath, atomically: true, encoding: .utf8)
    let pgbench =
        (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.sorted().last.map {
            "/usr/lib/postgresql/\($0)/bin/pgbench"
        } ?? "pgbench"
    let arguments = [
        pgbench, "-n", "-M", "extended", "-c", "\(clients)", "-j", "2", "-t", "\(perClient)", "-f",
        scriptPath, copy.url,
    ]
    let output = try shell(arguments)
    func number(after label: String) -> Double {
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(label) }) else { return 0 }
        return Double(line.dropFirst(label.count).split(separator: " ").first ?? "") ?? 0
    }
    return PgbenchResult(
        clients: clients,
        transactions: clients * perClient,
        transactionsPerSecond: number(after: "tps = "),
        latencyAverageMs: number(after: "latency average = "),
        command: arguments.joined(separator: " ").replacingOccurrences(of: scriptPath, with: "lease-complete.pgbench"),
        script: pgbenchScript
    )
}
