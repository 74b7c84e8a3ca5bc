import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// New work reaches idle coordinators through PostgreSQL's NOTIFY, not their poll: with the poll set to five
/// minutes, a job submitted from elsewhere (only the database is shared) is planned, encoded and stitched at once.
@Suite("Wake-ups through the database", .requiresPostgreSQL, .farmTimeLimit)
struct WakeUpTests {
    @Test func aJobSubmittedToAnIdleFarmIsDoneLongBeforeItsPoll() async throws {
        let directory = try TemporaryDirectory("farm-wake")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240)
        try await InProcessFarm.run(agents: 1, pollIntervalSeconds: 300) { store, _ in
            // Idle: the coordinator listens on the work channel and the agent's session waits.
            let listening = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < listening {
                let rows = try await store.client.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                                   AND query ILIKE 'LISTEN%')
                      AND EXISTS (SELECT 1 FROM agents)
                    """,
                    logger: testLogger
                )
                var ready = false
                for try await value in rows.decode(Bool.self) { ready = value }
                if ready { break }
                try await Task.sleep(for: .milliseconds(100))
            }
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
