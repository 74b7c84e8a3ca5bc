import Synchronization

/// Rewrites running jobs' progressive playlists after results are accepted, off the agent sessions.
///
/// A session used to rewrite them itself after each accepted result, under the job's playlist lock, before it read
/// the agent's next message: with hundreds of agents on a few jobs the sessions queued on that lock (73 ms a result
/// at 800 slots, `pg_stat_statements` in `make bench`), and the agents' next leases waited behind it. Now a session
/// only marks the job; one loop rewrites each marked job, once for however many results arrived meanwhile, so the
/// playlists still grow in order and a burst of results costs one rewrite per job.
package final class ProgressPublisher: Sendable {
    private let marked = Mutex<Set<Int64>>([])
    private let signal = WorkSignal()

    package init() {}

    /// The job accepted a result: its playlists are rewritten soon. Never waits.
    package func jobChanged(_ jobID: Int64) {
        self.marked.withLock { _ = $0.insert(jobID) }
        self.signal.notifyAll()
    }

    /// Rewrites the marked jobs with `publish`, one at a time, until cancelled. `publish` reports its own failures:
    /// a playlist that could not be written costs a player the newest segments until the next rewrite or the stitch.
    package func run(publish: @Sendable (Int64) async -> Void) async {
        var seen = self.signal.generation
        while !Task.isCancelled {
            let jobs = self.marked.withLock { marked in
                defer { marked.removeAll() }
                return marked
            }
            for job in jobs.sorted() where !Task.isCancelled { await publish(job) }
            if jobs.isEmpty {
                await self.signal.wait(since: seen, timeout: .seconds(1))
            }
            seen = self.signal.generation
        }
    }
}
