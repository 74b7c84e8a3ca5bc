import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import PostgresNIO
import Synchronization
import Testing

@Suite("Leases and fencing on a real PostgreSQL", .requiresPostgreSQL, .farmTimeLimit)
struct LeaseFencingTests {
    /// Plans a real 6 s clip into a job (three 2 s video chunks and the audio track, by default) and returns its id.
    static func plannedJob(
        _ store: JobStore,
        directory: TemporaryDirectory,
        settings: JobSettings = JobSettings(segmentDuration: 2, rungs: ["240p"]),
        priority: Int = 0,
        name: String = "clip"
    ) async throws -> Int64 {
        let source = directory.file("\(name).mp4")
        if !FileManager.default.fileExists(atPath: source) {
            try Fixtures.makeClip(at: source, seconds: 6, width: 320, height: 240)
        }
        try await Migrations.migrate(store.client, logger: testLogger)
        let jobID = try await store.submit(
            source: source,
            outputDirectory: directory.file("\(name)-out"),
            settings: settings,
            priority: priority
        )
        let planned = try await store.planNextJob { try await JobPlanning.plan($0) }
        #expect(planned?.id == jobID)
        #expect(planned?.error == nil)
        return jobID
    }

    /// A fresh database with one job planned from a real 6 s clip; the database is dropped afterwards.
    static func withPlannedJob(_ body: @Sendable (JobStore, PostgresClient, Int64) async throws -> Void) async throws {
        try await TestDatabase.with { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try await withPostgresClient(database.url) { client in
                let store = JobStore(client: client, logger: testLogger)
                try await body(store, client, try await Self.plannedJob(store, directory: directory))
            }
        }
    }

    @Test func lateCompletionAfterReleaseIsRefusedAndTheNewLeaseIsKept() async throws {
        try await Self.withPlannedJob { store, client, _ in

            let first = try #require(try await store.lease(agentID: 1, agentName: "slow-agent", leaseSeconds: 0.5))
            // The first agent goes quiet: its lease runs out and the reaper hands the task back.
            try await Task.sleep(for: .seconds(1))
            let reaped = try await store.reapExpiredLeases()
            #expect(reaped.map(\.taskID).contains(first.taskID))
            #expect(reaped.allSatisfy { $0.requeued })

            // Waits out the retry backoff, then another agent leases the same task with a larger token.
            var second: LeasedTask?
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if let leased = try await store.lease(agentID: 2, agentName: "fast-agent", leaseSeconds: 30),
                    leased.taskID == first.taskID
                {
                    second = leased
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let retry = try #require(second)
            #expect(retry.token > first.token)
            #expect(retry.attempts == 2)

            let published = Mutex<[String]>([])
            let outputs = [
                OutputFile(
                    rendition: "240p",
                    role: .segment,
                    segmentIndex: 0,
                    path: "240p/segment_00000.m4s",
                    bytes: 10,
                    sha256: "aa",
                    startPTS: 0,
                    duration: 1,
                    frames: 1,
                    timeBase: Rational(1, 25)
                )
            ]
            let late = try await store.complete(
                taskID: first.taskID,
                token: first.token,
                agentName: "slow-agent",
                coordinator: "test",
                outputs: outputs
            ) {
                published.withLock { $0.append("slow-agent") }
            }
            guard case .stale = late else {
                Issue.record("the late result was not refused: \(late)")
                return
            }
            let kept = try await store.complete(
                taskID: retry.taskID,
                token: retry.token,
                agentName: "fast-agent",
                coordinator: "test",
                outputs: outputs
            ) {
                published.withLock { $0.append("fast-agent") }
            }
            guard case .accepted = kept else {
                Issue.record("the current lease's result was not accepted: \(kept)")
                return
            }
            // A retried report of the accepted result is acknowledged without a second effect.
            let again = try await store.complete(
                taskID: retry.taskID,
                token: retry.token,
                agentName: "fast-agent",
                coordinator: "test",
                outputs: outputs
            ) {
                published.withLock { $0.append("fast-agent again") }
            }
            #expect(again == .alreadyAccepted)
            #expect(published.withLock { $0 } == ["fast-agent"])

            let rows = try await client.query(
                "SELECT state, accepted_token, accepted_by FROM tasks WHERE id = \(first.taskID)",
                logger: testLogger
            )
            for try await (state, token, agent) in rows.decode((TaskState, Int64?, String?).self) {
                #expect(state == .done)
                #expect(token == retry.token)
                #expect(agent == "fast-agent")
            }
            let segments = try await client.query(
                "SELECT count(*) FROM segments WHERE task_id = \(first.taskID)",
                logger: testLogger
            )
            for try await count in segments.decode(Int64.self) { #expect(count == 1) }
        }
    }

    /// Two agents finish a job's last two tasks at the same moment, through different connections (two
    /// coordinators, or two sessions of one). Each completion counts the tasks left and may see the other's task
    /// still leased; the stitcher's sweep must then hand the job on.
    @Test func theLastTwoTasksCompletedAtOnceHandTheJobToTheStitcher() async throws {
        try await Self.withPlannedJob { store, client, jobID in
            var leases: [LeasedTask] = []
            while let lease = try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 60) {
                leases.append(lease)
            }
            try #require(leases.count >= 2)
            for lease in leases.dropLast(2) {
                _ = try await store.complete(
                    taskID: lease.taskID,
                    token: lease.token,
                    agentName: "a",
                    coordinator: "test",
                    outputs: [],
                    publish: {}
                )
            }
            // Each publish waits (up to a second) for the other to be inside its transaction too, so both count the
            // tasks left while the other's completion is not committed yet.
            let arrived = Mutex<Int>.Reference(0)
            let verdicts = try await withThrowingTaskGroup(of: CompletionVerdict.self) { group in
                for lease in leases.suffix(2) {
                    group.addTask {
                        try await store.complete(
                            taskID: lease.taskID,
                            token: lease.token,
                            agentName: "a",
                            coordinator: "test",
                            outputs: []
                        ) {
                            arrived.mutex.withLock { $0 += 1 }
                            let deadline = ContinuousClock.now + .seconds(1)
                            while arrived.mutex.withLock({ $0 }) < 2, ContinuousClock.now < deadline {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(verdicts.count == 2)
            // When both counted the other's task as leased, neither moved the job on: the stitcher's sweep does.
            let promoted = try await store.promoteFinishedJobs()
            #expect(promoted == (verdicts.contains(.accepted(remainingTasks: 0)) ? 0 : 1))
            let status = try #require(try await store.status(jobID: jobID))
            #expect(status.state == .stitching)
        }
    }

    /// The outcome of that race, made certain: every task done while the job is still `running`. The sweep must
    /// move it to `stitching`, once.
    @Test func theSweepHandsOnAJobLeftRunningWithEveryTaskDone() async throws {
        try await Self.withPlannedJob { store, client, jobID in
            _ = try await client.query(
                "UPDATE tasks SET state = \(TaskState.done), lease_expires_at = NULL WHERE job_id = \(jobID)",
                logger: testLogger
            )
            _ = try await client.query(
                "UPDATE jobs SET state = \(JobState.running) WHERE id = \(jobID)",
                logger: testLogger
            )
            #expect(try await store.promoteFinishedJobs() == 1)
            #expect(try await store.status(jobID: jobID)?.state == .stitching)
            #expect(try await store.promoteFinishedJobs() == 0, "a job is handed on once")
        }
    }

    @Test func heartbeatWithAStaleTokenTellsTheAgentToStop() async throws {
        try await Self.withPlannedJob { store, client, _ in
            let lease = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
            #expect(try await store.heartbeat(taskID: lease.taskID, token: lease.token, leaseSeconds: 30))
            #expect(try await store.heartbeat(taskID: lease.taskID, token: lease.token - 1, leaseSeconds: 30) == false)
            // Nor does it extend the current holder's lease: a stale agent's heartbeats must not keep alive a lease
            // whose new holder has died.
            _ = try await client.query(
                "UPDATE tasks SET lease_expires_at = now() + interval '5 seconds' WHERE id = \(lease.taskID)",
                logger: testLogger
            )
            _ = try await store.heartbeat(taskID: lease.taskID, token: lease.token - 1, leaseSeconds: 30)
            let rows = try await client.query(
                "SELECT lease_expires_at < now() + interval '6 seconds' FROM tasks WHERE id = \(lease.taskID)",
                logger: testLogger
            )
            for try await unchanged in rows.decode(Bool.self) {
                #expect(unchanged, "a stale heartbeat extended the current lease")
            }
        }
    }

    @Test func oneBatchedHeartbeatRenewsOnlyTheCurrentLeases() async throws {
        try await Self.withPlannedJob { store, client, _ in
            let first = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
            let second = try #require(try await store.lease(agentID: 2, agentName: "b", leaseSeconds: 30))
            let current = [
                HeartbeatBatcher.Key(taskID: first.taskID, token: first.token),
                HeartbeatBatcher.Key(taskID: second.taskID, token: second.token),
            ]
            let stale = HeartbeatBatcher.Key(taskID: first.taskID, token: first.token - 1)
            let renewed = try await store.heartbeat(current + [stale], leaseSeconds: 30)
            #expect(renewed == Set(current))
        }
    }

    @Test func aTaskOutOfAttemptsFailsItsJobWithAReportNamingTheChunk() async throws {
        try await Self.withPlannedJob { store, client, jobID in
            var lease = try #require(try await store.lease(agentID: 1, agentName: "gpu-3", leaseSeconds: 30))
            while lease.spec.kind != .video {
                lease = try #require(try await store.lease(agentID: 1, agentName: "gpu-3", leaseSeconds: 30))
            }
            let report = try await store.fail(
                taskID: lease.taskID,
                token: lease.token,
                agentName: "gpu-3",
                message: "Invalid data found when processing input",
                retryable: false
            )
            let status = try #require(try await store.status(jobID: jobID))
            #expect(status.state == .failed)
            let error = try #require(status.error)
            #expect(report == error)
            #expect(error.hasPrefix("chunk \(lease.spec.chunkIndex + 1)/\(lease.spec.chunkCount) ["))
            #expect(error.contains("Invalid data found when processing input (attempt 1/5, agent gpu-3)"))
        }
    }

    /// Two chunks of one rendition whose init segments differ, completed at the same moment: one is accepted, the
    /// other refused naming the rendition, and nothing of it is written (its lease stays, for the session to fail).
    @Test func twoChunksWithDifferentInitSegmentsAtOnceAcceptOnlyOne() async throws {
        try await Self.withPlannedJob { store, client, _ in
            let first = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 60))
            let second = try #require(try await store.lease(agentID: 2, agentName: "b", leaseSeconds: 60))
            let overlapped = Mutex<Bool>.Reference(false)
            let verdicts = try await withThrowingTaskGroup(of: (Int64, CompletionVerdict).self) { group in
                for (lease, hash) in [(first, "aa"), (second, "bb")] {
                    group.addTask {
                        let initSegment = OutputFile(
                            rendition: "240p",
                            role: .initSegment,
                            segmentIndex: nil,
                            path: "240p/init.mp4",
                            bytes: 2,
                            sha256: hash,
                            startPTS: 0,
                            duration: 0,
                            frames: 0,
                            timeBase: Rational(1, 25)
                        )
                        let verdict = try await store.complete(
                            taskID: lease.taskID,
                            token: lease.token,
                            agentName: lease.taskID == first.taskID ? "a" : "b",
                            coordinator: "test",
                            outputs: [initSegment]
                        ) {
                            // The first to get here holds its init segment uncommitted until the other completion
                            // waits for it inside its own transaction (a backend waiting on a lock): the two overlap.
                            let deadline = ContinuousClock.now + .seconds(5)
                            while ContinuousClock.now < deadline {
                                let rows = try await client.query(
                                    """
                                    SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                                   WHERE datname = current_database() AND wait_event_type = 'Lock')
                                    """,
                                    logger: testLogger
                                )
                                for try await waiting in rows.decode(Bool.self) where waiting {
                                    overlapped.mutex.withLock { $0 = true }
                                }
                                if overlapped.mutex.withLock({ $0 }) { break }
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                        return (lease.taskID, verdict)
                    }
                }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            let accepted = verdicts.filter { if case .accepted = $0.value { true } else { false } }
            let refused = verdicts.compactMap {
                if case .refused(let reason) = $0.value { ($0.key, reason) } else { nil }
            }
            #expect(overlapped.mutex.withLock { $0 }, "the two completions ran one after the other")
            #expect(accepted.count == 1, "\(verdicts)")
            #expect(refused.count == 1, "\(verdicts)")
            #expect(
                refused.first?.1
                    == "the 240p init segment differs from the one accepted for another chunk: agents must run the "
                    + "same farm and libav versions for seamless output"
            )
            let loser = try #require(refused.first?.0)
            let rows = try await client.query(
                "SELECT state, (SELECT count(*) FROM task_results WHERE task_id = \(loser)) FROM tasks WHERE id = \(loser)",
                logger: testLogger
            )
            for try await (state, results) in rows.decode((TaskState, Int64).self) {
                #expect(state == .leased)
                #expect(results == 0)
            }
        }
    }

    /// However often an agent heartbeats, its lease ends at the hard deadline (a wedged encoder that still answers
    /// loses its task): renewals stop at the deadline, and after it the heartbeat is refused.
    @Test func theHardDeadlineEndsALeaseHoweverOftenItHeartbeats() async throws {
        try await Self.withPlannedJob { store, client, _ in
            let lease = try #require(try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30))
            let granted = try await client.query(
                """
                SELECT extract(epoch FROM lease_deadline - now())::double precision, media_seconds
                FROM tasks WHERE id = \(lease.taskID)
                """,
                logger: testLogger
            )
            for try await (seconds, media) in granted.decode((Double, Double).self) {
                let expected = max(JobStore.minimumDeadlineSeconds, media * JobStore.deadlinePerMediaSecond)
                #expect(abs(seconds - expected) < 5, "deadline \(seconds) s for \(media) s of media")
            }
            _ = try await client.query(
                "UPDATE tasks SET lease_deadline = now() + interval '2 seconds' WHERE id = \(lease.taskID)",
                logger: testLogger
            )
            #expect(try await store.heartbeat(taskID: lease.taskID, token: lease.token, leaseSeconds: 30))
            let capped = try await client.query(
                "SELECT lease_expires_at <= lease_deadline FROM tasks WHERE id = \(lease.taskID)",
                logger: testLogger
            )
            for try await atDeadline in capped.decode(Bool.self) {
                #expect(atDeadline, "a renewal runs past the deadline")
            }
            try await Task.sleep(for: .milliseconds(2200))
            #expect(try await store.heartbeat(taskID: lease.taskID, token: lease.token, leaseSeconds: 30) == false)
            let reaped = try await store.reapExpiredLeases()
            #expect(reaped.map(\.taskID) == [lease.taskID])
        }
    }
}
