import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// New work reaches idle coordinators through PostgreSQL's NOTIFY, not their poll: with the poll set to five
/// minutes, a job submitted from elsewhere (only the database is shared) is planned, encoded and stitched at once.
@Suite("Wake-ups through the database", .requiresPostgreSQL, .farmTimeLimit)
struct WakeUpTests {
    @Test func aJobSubmittedToAnIdleFarmIsDoneLongBeforeItsPoll() async throws {
        try await Fixtures.withClip("farm-wake", seconds: 4, width: 320, height: 240) { directory, source in
            try await InProcessFarm.run(agents: 1, pollIntervalSeconds: 300) { store, _ in
                try await Self.waitUntilIdle(store)
                let submitted = ContinuousClock.now
                let job = try await store.submit(
                    source: source,
                    outputDirectory: directory.file("out"),
                    settings: JobSettings(segmentDuration: 2, rungs: ["240p"], minimumChunks: 2)
                )
                let status = try await InProcessFarm.waitForJob(store, job, timeout: .seconds(45))
                #expect(status.state == .ready, "\(status.error ?? "")")
                let took = ContinuousClock.now - submitted
                #expect(took < .seconds(45), "ready after \(took), with a 300 s poll")
            }
        }
    }

    /// Waits until the farm is idle: the coordinator listens on the work channel and the agent is registered (its
    /// session then waits for work). Fails the test when that does not happen within 30 s, rather than going on and
    /// measuring a wake-up of a farm that was not ready.
    static func waitUntilIdle(_ store: JobStore) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let rows = try await store.client.query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                               AND query ILIKE 'LISTEN%')
                  AND EXISTS (SELECT 1 FROM agents)
                """,
                logger: testLogger
            )
            for try await ready in rows.decode(Bool.self) where ready { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ConfigurationError("the farm was not idle (coordinator listening, agent registered) within 30 s")
    }
}
