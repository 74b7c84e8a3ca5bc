import Synchronization

/// Renews the leases of many agents in one statement: sessions queue their heartbeats, and one loop sends what has
/// gathered every few milliseconds as a single UPDATE. A farm of hundreds of agents costs one query per round, not
/// one per agent.
package final class HeartbeatBatcher: Sendable {
    package struct Key: Hashable, Sendable {
        package var taskID: Int64
        package var token: Int64

        package init(taskID: Int64, token: Int64) {
            self.taskID = taskID
            self.token = token
        }
    }

    private struct Pending {
        var key: Key
        var continuation: CheckedContinuation<Bool, any Error>
    }

    private let pending = Mutex<[Pending]>([])
    private let signal = WorkSignal()
    private let running = Mutex(true)

    package init() {}

    /// True while the lease is this token's; the renewal is done by `run`.
    package func renew(taskID: Int64, token: Int64) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = self.running.withLock { running in
                if running {
                    self.pending.withLock {
                        $0.append(Pending(key: Key(taskID: taskID, token: token), continuation: continuation))
                    }
                }
                return running
            }
            if accepted {
                self.signal.notifyAll()
            } else {
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Sends the gathered heartbeats with `renew` (one statement for all) until cancelled.
    package func run(gather: Duration = .milliseconds(20), renew: @Sendable ([Key]) async throws -> Set<Key>) async {
        var seen = self.signal.generation
        while !Task.isCancelled {
            await self.signal.wait(since: seen, timeout: .seconds(1))
            try? await Task.sleep(for: gather)
            seen = self.signal.generation
            let batch = self.pending.withLock { pending in
                defer { pending.removeAll() }
                return pending
            }
            guard !batch.isEmpty else { continue }
            do {
                let renewed = try await renew(batch.map(\.key))
                for item in batch { item.continuation.resume(returning: renewed.contains(item.key)) }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
        }
        // Shutting down: nobody will send what is still queued.
        self.running.withLock { $0 = false }
        let left = self.pending.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        for item in left { item.continuation.resume(throwing: CancellationError()) }
    }
}
