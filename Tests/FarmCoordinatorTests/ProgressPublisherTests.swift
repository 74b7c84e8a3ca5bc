import FarmCoordinator
import Synchronization
import Testing

@Suite("Progress publisher")
struct ProgressPublisherTests {
    /// Results that arrive while a job's playlists are being rewritten cost one more rewrite of that job, not one
    /// each, and every marked job is rewritten.
    @Test func resultsDuringARewriteCostOneMoreRewrite() async throws {
        let publisher = ProgressPublisher()
        let rewrites = Mutex<[Int64]>([])
        let running = Task {
            await publisher.run { job in
                let first = rewrites.withLock { rewrites in
                    rewrites.append(job)
                    return rewrites.count == 1
                }
                if first {
                    // Meanwhile three more results of job 1 and one of job 2 are accepted.
                    for _ in 0..<3 { publisher.jobChanged(1) }
                    publisher.jobChanged(2)
                }
            }
        }
        publisher.jobChanged(1)
        let deadline = ContinuousClock.now + .seconds(10)
        while rewrites.withLock({ $0.count }) < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        // Nothing is marked now: no rewrite follows.
        try await Task.sleep(for: .milliseconds(100))
        running.cancel()
        await running.value
        #expect(rewrites.withLock { $0 } == [1, 1, 2])
    }
}
