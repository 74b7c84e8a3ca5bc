import FarmCoordinator
import FarmProtocol
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// Random interleavings of lease, heartbeat, complete, fail, expire, reap and agent crash against the real store on a
/// real PostgreSQL, by three agents with their own ids, checked after every step against a reference model: each task
/// has at most one accepted result, it carries the token that was current when it was accepted, its segment rows are
/// written with it and only then; a completion under the current lease is accepted, any other refused as stale; and
/// every walk ends with the job's tasks all accepted once or the job failed.
@Suite("Lease properties", .requiresPostgreSQL, .farmTimeLimit)
struct LeasePropertyTests {
    /// SplitMix64: a small seeded generator, so a failing sequence can be replayed from its seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// What the model knows: the newest token issued for each task, what each agent believes it holds, and every
    /// acceptance the store reported.
    struct Model {
        var latestToken: [Int64: Int64] = [:]
        var held: [String: [(task: Int64, token: Int64)]] = [:]
        var accepted: [Int64: Int64] = [:]
    }

    static let agents = ["a", "b", "c"]

    @Test(arguments: [1 as UInt64, 2, 3, 4])
    func randomInterleavingsNeverAcceptAResultTwiceOrWithAStaleToken(seed: UInt64) async throws {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withPostgresClient(database.url) { client in
                let store = JobStore(client: client, logger: testLogger)
                let jobID = try await LeaseFencingTests.plannedJob(store, directory: directory)
                var generator = SeededGenerator(state: seed)
                var model = Model()
                var log: [String] = []
                // Each task's result: the shared init segment and one segment numbered after the task, so that its
                // segment row can be told from every other task's.
                @Sendable func outputs(of task: Int64) -> [OutputFile] {
                    [
                        OutputFile(
                            rendition: "240p",
                            role: .initSegment,
                            segmentIndex: nil,
                            path: "240p/init.mp4",
                            bytes: 1,
                            sha256: "11",
                            startPTS: 0,
                            duration: 0,
                            frames: 0,
                            timeBase: Rational(1, 25)
                        ),
                        OutputFile(
                            rendition: "240p",
                            role: .segment,
                            segmentIndex: Int(task),
                            path: String(format: "240p/segment_%05d.m4s", Int(task)),
                            bytes: 1,
                            sha256: "00",
                            startPTS: 0,
                            duration: 1,
                            frames: 1,
                            timeBase: Rational(1, 25)
                        ),
                    ]
                }
                for step in 0..<120 {
                    let agentIndex = Int.random(in: 0..<Self.agents.count, using: &generator)
                    let agent = Self.agents[agentIndex]
                    let held = model.held[agent, default: []]
                    switch Int.random(in: 0..<100, using: &generator) {
                    case 0..<25:
                        if let lease = try await store.lease(
                            agentID: Int64(agentIndex + 1),
                            agentName: agent,
                            leaseSeconds: 30
                        ) {
                            #expect(
                                lease.token > (model.latestToken[lease.taskID] ?? 0),
                                "tokens only grow (seed \(seed))"
                            )
                            model.latestToken[lease.taskID] = lease.token
                            model.held[agent, default: []].append((lease.taskID, lease.token))
                            log.append("\(step): \(agent) leased task \(lease.taskID) token \(lease.token)")
                        }
                    case 25..<35:
                        if let (task, token) = held.randomElement(using: &generator) {
                            let renewed = try await store.heartbeat(taskID: task, token: token, leaseSeconds: 30)
                            if renewed {
                                #expect(
                                    model.latestToken[task] == token,
                                    "only the current lease renews (seed \(seed)): \(log.suffix(5))"
                                )
                            }
                            log.append("\(step): \(agent) heartbeat task \(task) token \(token): \(renewed)")
                        }
                    case 35..<60:
                        if let index = held.indices.randomElement(using: &generator) {
                            let (task, token) = held[index]
                            let wasCurrent = model.latestToken[task] == token
                            let before = try await Self.leaseRow(client: client, task: task)
                            let verdict = try await store.complete(
                                taskID: task,
                                token: token,
                                agentName: agent,
                                coordinator: "property",
                                outputs: outputs(of: task)
                            ) {}
                            switch verdict {
                            case .accepted:
                                #expect(
                                    wasCurrent,
                                    "accepted a result with a stale token (seed \(seed)): \(log.suffix(8))"
                                )
                                #expect(
                                    model.accepted[task] == nil,
                                    "accepted task \(task) twice (seed \(seed)): \(log.suffix(8))"
                                )
                                model.accepted[task] = token
                            case .alreadyAccepted:
                                #expect(
                                    model.accepted[task] == token,
                                    "acknowledged a result that was not accepted (seed \(seed))"
                                )
                            case .stale(let reason):
                                #expect(
                                    !(before.state == .leased && before.token == token),
                                    "refused the current lease's result (seed \(seed)): \(reason); \(log.suffix(8))"
                                )
                                #expect(
                                    model.accepted[task] != token,
                                    "refused a result accepted before (seed \(seed))"
                                )
                            case .refused(let reason):
                                Issue.record("every chunk brings the same init segment, yet: \(reason) (seed \(seed))")
                            }
                            model.held[agent]?.remove(at: index)
                            log.append("\(step): \(agent) completed task \(task) token \(token): \(verdict)")
                        }
                    case 60..<70:
                        if let index = held.indices.randomElement(using: &generator) {
                            let (task, token) = held[index]
                            let retryable = Bool.random(using: &generator)
                            _ = try await store.fail(
                                taskID: task,
                                token: token,
                                agentName: agent,
                                message: "injected",
                                retryable: retryable
                            )
                            model.held[agent]?.remove(at: index)
                            log.append("\(step): \(agent) failed task \(task) token \(token) retryable \(retryable)")
                        }
                    case 70..<80:
                        // Time passes for one lease: it expires on the database clock (the agent keeps believing it holds it).
                        _ = try await client.query(
                            """
                            UPDATE tasks SET lease_expires_at = now() - interval '1 second', run_after = now()
                            WHERE id = (SELECT id FROM tasks WHERE state = \(TaskState.leased) ORDER BY random() LIMIT 1)
                            """,
                            logger: testLogger
                        )
                        log.append("\(step): a lease expired")
                    case 80..<90:
                        let reaped = try await store.reapExpiredLeases()
                        _ = try await client.query(
                            "UPDATE tasks SET run_after = now() WHERE state = \(TaskState.queued)",
                            logger: testLogger
                        )
                        log.append("\(step): reaped \(reaped.map(\.taskID))")
                    default:
                        // The agent crashes: it forgets its leases; they run out on their own.
                        model.held[agent] = []
                        log.append("\(step): \(agent) crashed")
                    }
                    try await Self.checkInvariants(client: client, model: model, seed: seed, log: log)
                }
                // The walk ends: the queue is drained by one healthy agent, and every task is accepted exactly once,
                // or the job failed (a task out of attempts).
                _ = try await client.query(
                    "UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE state = \(TaskState.leased)",
                    logger: testLogger
                )
                _ = try await store.reapExpiredLeases()
                _ = try await client.query(
                    "UPDATE tasks SET run_after = now() WHERE state = \(TaskState.queued)",
                    logger: testLogger
                )
                while let lease = try await store.lease(agentID: 4, agentName: "d", leaseSeconds: 30) {
                    let verdict = try await store.complete(
                        taskID: lease.taskID,
                        token: lease.token,
                        agentName: "d",
                        coordinator: "property",
                        outputs: outputs(of: lease.taskID)
                    ) {}
                    #expect(verdict.isAccepted, "the healthy agent's result was refused (seed \(seed)): \(verdict)")
                    model.accepted[lease.taskID] = lease.token
                }
                try await Self.checkInvariants(client: client, model: model, seed: seed, log: log)
                let job = try #require(try await store.status(jobID: jobID))
                let failedTasks = try await client.query(
                    "SELECT count(*) FROM tasks WHERE job_id = \(jobID) AND state = \(TaskState.failed)",
                    logger: testLogger
                )
                var failed = 0
                for try await count in failedTasks.decode(Int.self) { failed = count }
                if failed == 0 {
                    #expect(job.state == .stitching, "seed \(seed): \(job.state)")
                    #expect(model.accepted.count == job.tasksTotal, "seed \(seed): every task accepted once")
                } else {
                    #expect(job.state == .failed, "seed \(seed): a task failed, the job is \(job.state)")
                }
                #expect(!model.accepted.isEmpty, "seed \(seed): the walk accepted nothing")
            }
        }
    }

    /// A task's state and current lease token, as the store sees it before a completion.
    static func leaseRow(client: PostgresClient, task: Int64) async throws -> (state: TaskState?, token: Int64?) {
        let rows = try await client.query("SELECT state, lease_token FROM tasks WHERE id = \(task)", logger: testLogger)
        for try await row in rows.decode((TaskState, Int64?).self) { return row }
        return (nil, nil)
    }

    static func checkInvariants(client: PostgresClient, model: Model, seed: UInt64, log: [String]) async throws {
        // Segment rows come with an accepted result, and only with it: one per accepted task, written by that task.
        let segments = try await client.query(
            "SELECT s.task_id, s.index, t.state FROM segments s JOIN tasks t ON t.id = s.task_id",
            logger: testLogger
        )
        var written = Set<Int64>()
        for try await (task, index, state) in segments.decode((Int64, Int, TaskState).self) {
            #expect(index == Int(task) && state == .done, "a segment row of task \(task) (\(state)) (seed \(seed))")
            written.insert(task)
        }
        #expect(written == Set(model.accepted.keys), "segment rows differ from accepted results (seed \(seed))")
        let owners = try await client.query(
            "SELECT id, lease_owner, lease_agent_id FROM tasks WHERE lease_owner IS NOT NULL",
            logger: testLogger
        )
        for try await (task, owner, agentID) in owners.decode((Int64, String, Int64).self) {
            let expected = (Self.agents + ["d"]).firstIndex(of: owner).map { Int64($0 + 1) }
            #expect(agentID == expected, "task \(task) leased by \(owner) under agent id \(agentID) (seed \(seed))")
        }
        let rows = try await client.query(
            """
            SELECT t.id, t.state, t.accepted_token, count(r.task_id), min(r.token)
            FROM tasks t LEFT JOIN task_results r ON r.task_id = t.id
            GROUP BY t.id, t.state, t.accepted_token
            """,
            logger: testLogger
        )
        for try await (task, state, acceptedToken, results, resultToken) in rows.decode(
            (Int64, TaskState, Int64?, Int64, Int64?).self
        ) {
            #expect(results <= 1, "task \(task) has \(results) accepted results (seed \(seed)): \(log.suffix(8))")
            #expect(
                (state == .done) == (results == 1),
                "task \(task) is \(state) with \(results) results (seed \(seed))"
            )
            if results == 1 {
                #expect(resultToken == acceptedToken, "task \(task)'s result token differs from its accepted token")
                #expect(model.accepted[task] == resultToken, "the database and the model disagree on task \(task)")
            }
        }
    }
}

extension CompletionVerdict {
    var isAccepted: Bool {
        if case .accepted = self { return true }
        return false
    }
}
