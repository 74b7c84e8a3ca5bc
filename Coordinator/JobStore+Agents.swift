import FarmMedia
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

/// What registering a connection's agent came to.
package enum AgentRegistration: Sendable, Equatable {
    /// The agent's row; `draining` when a drain was asked for it before this connection came (it is told at once).
    case registered(agentID: Int64, draining: Bool)
    /// Another process holds the name and was seen `secondsAgo` on `coordinator`.
    case nameTaken(coordinator: String?, secondsAgo: Double)
}

/// An agent as `farm agents` shows it.
package struct AgentRecord: Sendable {
    package var name: String
    /// Gone when the row says so or when no coordinator has seen it for `JobStore.agentGoneAfterSeconds`.
    package var state: AgentState
    package var capabilities: FarmMessage.Capabilities
    package var coordinator: String?
    package var version: String?
    package var firstSeen: Date
    package var lastSeen: Date
    /// What it encodes now.
    package var tasks: [(jobID: Int64, taskID: Int64, rendition: String)]
    /// Media seconds over encode seconds of its last results; nil before its first.
    package var speed: Double?
    package var resultsCounted: Int
}

/// The agents' registry (migrations 1 and 14): registered on each connection's handshake, kept seen by the
/// coordinator holding their sessions, steered (drained) from any machine through the database.
extension JobStore {
    /// An agent no coordinator has marked seen for this long is gone, whatever its row says (its machine or its
    /// coordinator died without closing the connection). Coordinators mark theirs seen every few seconds.
    package static let agentGoneAfterSeconds = 30.0

    /// Registers a connection's agent: a new name, the same process's next slot, or a name whose last process is
    /// gone. A name held by another live process is refused, so two machines never pass for one.
    package func registerAgent(
        name: String,
        capabilities: FarmMessage.Capabilities,
        coordinator: String
    ) async throws -> AgentRegistration {
        let rows = try await self.client.query(
            """
            INSERT INTO agents (name, capabilities, slots, state, coordinator, last_seen, instance, version)
            VALUES (\(name), \(capabilities), \(capabilities.slots), \(AgentState.active), \(coordinator), now(),
                    \(capabilities.instance), \(capabilities.version))
            ON CONFLICT (name) DO UPDATE SET capabilities = EXCLUDED.capabilities, slots = EXCLUDED.slots,
                state = CASE WHEN agents.instance = EXCLUDED.instance AND agents.state <> \(AgentState.gone)
                             THEN agents.state ELSE EXCLUDED.state END,
                drain_requested_at = CASE WHEN agents.instance = EXCLUDED.instance AND agents.state <> \(AgentState.gone)
                                          THEN agents.drain_requested_at END,
                first_seen = CASE WHEN agents.instance IS DISTINCT FROM EXCLUDED.instance THEN now() ELSE agents.first_seen END,
                coordinator = EXCLUDED.coordinator, last_seen = now(), instance = EXCLUDED.instance,
                version = EXCLUDED.version
            WHERE agents.instance IS NULL OR EXCLUDED.instance IS NULL OR agents.instance = EXCLUDED.instance
               OR agents.state = \(AgentState.gone)
               OR agents.last_seen < now() - make_interval(secs => \(Self.agentGoneAfterSeconds))
            RETURNING id, state
            """,
            logger: self.logger
        )
        for try await (id, state) in rows.decode((Int64, AgentState).self) {
            return .registered(agentID: id, draining: state == .draining)
        }
        let holder = try await self.client.query(
            """
            SELECT coordinator, extract(epoch FROM now() - last_seen)::double precision FROM agents WHERE name = \(name)
            """,
            logger: self.logger
        )
        for try await (coordinator, secondsAgo) in holder.decode((String?, Double).self) {
            return .nameTaken(coordinator: coordinator, secondsAgo: secondsAgo)
        }
        throw ConfigurationError("registering agent \(name) returned no row")
    }

    /// Marks the agents whose sessions this coordinator holds as seen now.
    package func markAgentsSeen(_ names: [String]) async throws {
        guard !names.isEmpty else { return }
        _ = try await self.client.query(
            "UPDATE agents SET last_seen = now() WHERE name = ANY(\(names)) AND state <> \(AgentState.gone)",
            logger: self.logger
        )
    }

    /// The agent's last session on this coordinator closed: gone, unless another process has taken the name since.
    package func agentLeft(name: String, instance: String?) async throws {
        _ = try await self.client.query(
            """
            UPDATE agents SET state = \(AgentState.gone), last_seen = now()
            WHERE name = \(name) AND instance IS NOT DISTINCT FROM \(instance)
            """,
            logger: self.logger
        )
    }

    /// Asks a connected agent to drain: it finishes what it encodes, takes nothing more and exits. The coordinator
    /// holding its sessions hears it on the work channel. False when no live agent has the name.
    package func requestDrain(name: String) async throws -> Bool {
        let rows = try await self.client.query(
            """
            UPDATE agents SET state = \(AgentState.draining), drain_requested_at = coalesce(drain_requested_at, now())
            WHERE name = \(name) AND state <> \(AgentState.gone)
              AND last_seen >= now() - make_interval(secs => \(Self.agentGoneAfterSeconds))
            RETURNING id
            """,
            logger: self.logger
        )
        var found = false
        for try await _ in rows.decode(Int64.self) { found = true }
        if found { try await self.notifyWork(Self.drainPrefix + name) }
        return found
    }

    /// The payload prefix of a drain request on the work channel; the agent's name follows it.
    package static let drainPrefix = "drain:"

    /// Every agent, live ones first, with what it encodes now and its speed over its last `lastResults` results.
    package func agents(lastResults: Int = 20) async throws -> [AgentRecord] {
        let rows = try await self.client.query(
            """
            SELECT a.name,
                   CASE WHEN a.last_seen < now() - make_interval(secs => \(Self.agentGoneAfterSeconds))
                        THEN \(AgentState.gone) ELSE a.state END,
                   a.capabilities, a.coordinator, a.version, a.first_seen, a.last_seen,
                   coalesce((SELECT string_agg(t.job_id || ':' || t.id || ':' || CASE WHEN t.kind = 'audio' THEN 'audio' ELSE
                                        coalesce((SELECT string_agg(r->>'name', ',') FROM jsonb_array_elements(t.spec->'renditions') r), '') END,
                                        ' ' ORDER BY t.id)
                             FROM tasks t WHERE t.lease_agent_id = a.id AND t.state = \(TaskState.leased)), ''),
                   r.media, r.seconds, coalesce(r.counted, 0)
            FROM agents a
            LEFT JOIN LATERAL (
                SELECT sum(media_seconds) AS media, sum(seconds) AS seconds, count(*)::integer AS counted FROM (
                    SELECT media_seconds, seconds FROM task_results
                    WHERE agent = a.name AND seconds > 0 AND media_seconds IS NOT NULL
                    ORDER BY accepted_at DESC LIMIT \(lastResults)
                ) last
            ) r ON true
            ORDER BY (a.state = \(AgentState.gone) OR a.last_seen < now() - make_interval(secs => \(Self.agentGoneAfterSeconds))), a.name
            """,
            logger: self.logger
        )
        var agents: [AgentRecord] = []
        for try await (name, state, capabilities, coordinator, version, first, last, tasks, media, seconds, counted)
            in rows.decode(
                (
                    String, AgentState, FarmMessage.Capabilities, String?, String?, Date, Date, String, Double?,
                    Double?,
                    Int
                ).self
            )
        {
            agents.append(
                AgentRecord(
                    name: name,
                    state: state,
                    capabilities: capabilities,
                    coordinator: coordinator,
                    version: version,
                    firstSeen: first,
                    lastSeen: last,
                    tasks: Self.leasedTasks(tasks),
                    speed: media.flatMap { media in seconds.flatMap { $0 > 0 ? media / $0 : nil } },
                    resultsCounted: counted
                )
            )
        }
        return agents
    }

    /// `job:task:renditions` triples, space separated, as the agents query lists them.
    package static func leasedTasks(_ text: String) -> [(jobID: Int64, taskID: Int64, rendition: String)] {
        text.split(separator: " ").compactMap { item in
            let parts = item.split(separator: ":", maxSplits: 2)
            guard parts.count >= 2, let job = Int64(parts[0]), let task = Int64(parts[1]) else { return nil }
            return (job, task, parts.count == 3 ? String(parts[2]) : "")
        }
    }
}

/// A job as `farm jobs` shows it.
package struct JobListing: Sendable {
    package var id: Int64
    package var state: JobState
    package var priority: Int
    package var tenant: String?
    package var source: String
    package var tasksDone: Int
    package var tasksTotal: Int
    package var createdAt: Date
    /// Seconds until it is done at its pace so far (since its first lease); nil before it has one done task.
    package var etaSeconds: Double?
    package var error: String?

    package var percent: Double { self.tasksTotal == 0 ? 0 : 100 * Double(self.tasksDone) / Double(self.tasksTotal) }
}

extension JobStore {
    /// The newest jobs (of one state, if given), with their progress and a time-to-done estimate.
    package func jobListings(state: JobState? = nil, limit: Int = 50) async throws -> [JobListing] {
        let rows = try await self.client.query(
            """
            SELECT j.id, j.state, j.priority, j.tenant, coalesce(j.source_url, j.source), coalesce(c.done, 0),
                   coalesce(c.total, 0), j.created_at,
                   CASE WHEN j.state IN (\(JobState.running), \(JobState.stitching)) AND c.done > 0 AND c.done < c.total
                        THEN extract(epoch FROM now() - c.first_lease)::double precision * (c.total - c.done) / c.done END,
                   j.error
            FROM jobs j
            LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE state = \(TaskState.done))::integer AS done, count(*)::integer AS total,
                       min(leased_at) AS first_lease
                FROM tasks WHERE job_id = j.id
            ) c ON true
            WHERE \(state)::text IS NULL OR j.state = \(state)
            ORDER BY j.id DESC LIMIT \(limit)
            """,
            logger: self.logger
        )
        var jobs: [JobListing] = []
        for try await (id, state, priority, tenant, source, done, total, created, eta, error) in rows.decode(
            (Int64, JobState, Int, String?, String, Int, Int, Date, Double?, String?).self
        ) {
            jobs.append(
                JobListing(
                    id: id,
                    state: state,
                    priority: priority,
                    tenant: tenant,
                    source: source,
                    tasksDone: done,
                    tasksTotal: total,
                    createdAt: created,
                    etaSeconds: eta,
                    error: error
                )
            )
        }
        return jobs
    }
}
