import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// What the store decides about whose turn it is, on a real PostgreSQL: priorities, the in-flight cap, retry backoff,
/// a failed task ending its job's other leases, and the notifications that wake coordinators.
@Suite("Scheduling on a real PostgreSQL", .requiresPostgreSQL, .farmTimeLimit)
struct SchedulingTests {
    /// A fresh database and folder; the database is dropped afterwards.
    static func withStore(
        _ body: @Sendable (JobStore, PostgresClient, TemporaryDirectory) async throws -> Void
    )
        async throws
    {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withPostgresClient(database.url) { client in
                try await Migrations.migrate(client, logger: testLogger)
                try await body(JobStore(client: client, logger: testLogger), client, directory)
            }
        }
    }

    /// The payloads notified on the work channel while `body` runs (and shortly after, for those sent at commit).
    static func notifications(
        _ client: PostgresClient,
        during body: @Sendable () async throws -> Void
    ) async throws -> [String] {
        let payloads = Mutex<[String]>.Reference([])
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    try await connection.listen(on: JobStore.workChannel) { notifications in
                        readyContinuation.yield()
                        for try await notification in notifications {
                            payloads.mutex.withLock { $0.append(notification.payload) }
                        }
                    }
                }
            }
            var iterator = ready.makeAsyncIterator()
            await iterator.next()
            try await body()
            try await Task.sleep(for: .milliseconds(800))
            group.cancelAll()
            try? await group.waitForAll()
        }
        return payloads.mutex.withLock { $0 }
    }

    /// Seconds from now until a task may be leased again.
    /// When a task may run again, in seconds since the epoch on the database's clock.
    static func runAfter(_ client: PostgresClient, task: Int64) async throws -> Double {
        let rows = try await client.query(
            "SELECT extract(epoch FROM run_after)::double precision FROM tasks WHERE id = \(task)",
            logger: testLogger
        )
        for try await seconds in rows.decode(Double.self) { return seconds }
        throw ConfigurationError("task \(task) is gone")
    }

    /// The database's clock now (not the transaction's start), in seconds since the epoch.
    static func databaseClock(_ client: PostgresClient) async throws -> Double {
        let rows = try await client.query(
            "SELECT extract(epoch FROM clock_timestamp())::double precision",
            logger: testLogger
        )
        for try await seconds in rows.decode(Double.self) { return seconds }
        throw ConfigurationError("the database returned no clock")
    }

    @Test func aHigherPriorityJobIsLeasedFirstThoughSubmittedLater() async throws {
        try await Self.withStore { store, client, directory in
            let low = try await LeaseFencingTests.plannedJob(store, directory: directory, name: "low")
            let high = try await LeaseFencingTests.plannedJob(store, directory: directory, priority: 5, name: "high")
            var order: [Int64] = []
            while let lease = try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) {
                order.append(lease.jobID)
            }
            #expect(order.count == 8)
            #expect(order == Array(repeating: high, count: 4) + Array(repeating: low, count: 4))
        }
    }

    /// A 480p job's chunks are two tasks each (480p; 240p and 360p together), leased costliest first: the audio,
    /// every chunk's 480p in chunk order, then the lower rungs. A failure report names the task's rungs.
    @Test func theCostliestTaskIsLeasedFirstAndAFailureNamesItsRungs() async throws {
        try await Self.withStore { store, client, directory in
            let source = directory.file("clip480.mp4")
            try Fixtures.makeClip(at: source, seconds: 6, width: 854, height: 480)
            let jobID = try await LeaseFencingTests.plannedJob(
                store,
                directory: directory,
                settings: JobSettings(segmentDuration: 2),
                name: "clip480"
            )
            var leases: [LeasedTask] = []
            while let lease = try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) {
                leases.append(lease)
            }
            let order = leases.map { lease in
                lease.spec.kind == .audio
                    ? "audio"
                    : "\(lease.spec.chunkIndex):" + lease.spec.renditions.map(\.name).joined(separator: "+")
            }
            #expect(order == ["audio", "0:480p", "1:480p", "2:480p", "0:240p+360p", "1:240p+360p", "2:240p+360p"])
            let last = try #require(leases.last)
            let report = try await store.fail(
                taskID: last.taskID,
                token: last.token,
                agentName: "a",
                message: "Invalid data found when processing input",
                retryable: false
            )
            #expect(report?.hasPrefix("chunk 3/3 240p+360p [4.0 s–end]: ") == true, "\(report ?? "")")
            #expect(try await store.status(jobID: jobID)?.tasksTotal == 7)
        }
    }

    @Test func theInFlightCapHoldsBackAJobsOtherTasksUntilOneEnds() async throws {
        try await Self.withStore { store, client, directory in
            _ = try await LeaseFencingTests.plannedJob(
                store,
                directory: directory,
                settings: JobSettings(segmentDuration: 2, rungs: ["240p"], maxInFlight: 2)
            )
            let first = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
            _ = try #require(try await store.lease(agentID: 2, agentName: "b", leaseSeconds: 30))
            #expect(try await store.lease(agentID: 3, agentName: "c", leaseSeconds: 30) == nil, "a third in flight")
            _ = try await store.complete(
                taskID: first.taskID,
                token: first.token,
                agentName: "a",
                coordinator: "test",
                outputs: [],
                publish: {}
            )
            #expect(try await store.lease(agentID: 3, agentName: "c", leaseSeconds: 30) != nil)
            #expect(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) == nil)
        }
    }

    /// Each retryable failure waits about twice as long as the one before (1 s, 2 s, 4 s, 8 s, ±25%), and the
    /// attempt after the last allowed one fails the task and its job.
    @Test func retryBackoffDoublesAndTheAttemptLimitFailsTheJob() async throws {
        try await Self.withStore { store, client, directory in
            let jobID = try await LeaseFencingTests.plannedJob(store, directory: directory)
            var task: Int64?
            for attempt in 1...5 {
                var lease = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
                while let task, lease.taskID != task {
                    lease = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
                }
                task = lease.taskID
                #expect(lease.attempts == attempt)
                let before = try await Self.databaseClock(client)
                let jobError = try await store.fail(
                    taskID: lease.taskID,
                    token: lease.token,
                    agentName: "a",
                    message: "injected",
                    retryable: true
                )
                guard attempt < 5 else {
                    #expect(jobError?.contains("injected (attempt 5/5, agent a)") == true, "\(jobError ?? "nil")")
                    break
                }
                let after = try await Self.databaseClock(client)
                #expect(jobError == nil)
                let nominal = pow(2, Double(attempt - 1))
                let runAfter = try await Self.runAfter(client, task: lease.taskID)
                // The failure was recorded between `before` and `after`, however slow the machine: the exact bounds
                // of the backoff hold from both ends, with no allowance for timing.
                #expect(
                    runAfter - before >= nominal * 0.75 && runAfter - after <= nominal * 1.25,
                    "attempt \(attempt): \(runAfter - before) s after the call, \(runAfter - after) s after it returned"
                )
                // Other tasks are leased meanwhile, never this one before its time. Its time is moved an hour on
                // for this check: a loaded machine may take longer than the backoff to get here.
                _ = try await client.query(
                    "UPDATE tasks SET state = \(TaskState.cancelled) WHERE job_id = \(jobID) AND id <> \(lease.taskID)",
                    logger: testLogger
                )
                _ = try await client.query(
                    "UPDATE tasks SET run_after = now() + interval '1 hour' WHERE id = \(lease.taskID)",
                    logger: testLogger
                )
                #expect(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) == nil, "leased early")
                _ = try await client.query(
                    "UPDATE tasks SET run_after = now() WHERE id = \(lease.taskID)",
                    logger: testLogger
                )
            }
            #expect(try await store.status(jobID: jobID)?.state == .failed)
        }
    }

    /// A task that fails for good ends its job: the other tasks are cancelled, every coordinator is told to revoke
    /// the job's leases, and those agents' heartbeats and results are refused.
    @Test func aTaskFailingItsJobRevokesTheOtherLeases() async throws {
        try await Self.withStore { store, client, directory in
            let jobID = try await LeaseFencingTests.plannedJob(store, directory: directory)
            var leases: [LeasedTask] = []
            for agent in 1...4 {
                leases.append(
                    try #require(
                        try await store.lease(agentID: Int64(agent), agentName: "agent-\(agent)", leaseSeconds: 30)
                    )
                )
            }
            let failing = leases[0]
            let payloads = try await Self.notifications(client) {
                _ = try await store.fail(
                    taskID: failing.taskID,
                    token: failing.token,
                    agentName: "agent-1",
                    message: "Invalid data found when processing input",
                    retryable: false
                )
            }
            #expect(payloads.contains("\(JobStore.revokePrefix)\(jobID)"), "\(payloads)")
            for lease in leases.dropFirst() {
                #expect(try await store.heartbeat(taskID: lease.taskID, token: lease.token, leaseSeconds: 30) == false)
                let verdict = try await store.complete(
                    taskID: lease.taskID,
                    token: lease.token,
                    agentName: "agent-2",
                    coordinator: "test",
                    outputs: [],
                    publish: {}
                )
                guard case .stale(let reason) = verdict else {
                    Issue.record("a revoked lease's result was \(verdict)")
                    continue
                }
                #expect(reason.contains("task \(lease.taskID) is cancelled"))
            }
        }
    }

    /// Coordinators wake on notifications, not on their poll: a submitted job, a lease given back, an expired lease
    /// requeued and a job's last result each notify the work channel.
    @Test func eachChangeThatMakesWorkNotifiesTheWorkChannel() async throws {
        try await Self.withStore { store, client, directory in
            let submitted = try await Self.notifications(client) {
                _ = try await LeaseFencingTests.plannedJob(store, directory: directory)
            }
            #expect(submitted.contains("job"), "\(submitted)")
            let lease = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
            let released = try await Self.notifications(client) {
                try await store.releaseLease(taskID: lease.taskID, token: lease.token)
            }
            #expect(released == ["released"])
            let expiring = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 0.1))
            try await Task.sleep(for: .milliseconds(300))
            let reaped = try await Self.notifications(client) { _ = try await store.reapExpiredLeases() }
            #expect(reaped == ["reaped"], "task \(expiring.taskID)")
            _ = try await client.query("UPDATE tasks SET run_after = now()", logger: testLogger)
            var leases: [LeasedTask] = []
            while let lease = try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) {
                leases.append(lease)
            }
            let finished = try await Self.notifications(client) { [leases] in
                for lease in leases {
                    _ = try await store.complete(
                        taskID: lease.taskID,
                        token: lease.token,
                        agentName: "a",
                        coordinator: "test",
                        outputs: [],
                        publish: {}
                    )
                }
            }
            #expect(finished == ["stitch"])
        }
    }
}
