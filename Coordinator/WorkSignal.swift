import Synchronization

/// Wakes every waiter when there may be new work (a NOTIFY on the work channel, a result committed). Waiters also
/// wake after a timeout, so work that becomes due on the clock (a backoff ending) is not missed.
///
/// A notification that comes while a loop is busy looking for work (between its query and its wait) is not lost:
/// the loop reads `generation` before it looks, and `wait(since:)` returns at once when a notification came since.
package final class WorkSignal: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    package init() {}

    /// How many notifications there have been.
    package var generation: UInt64 { self.state.withLock { $0.generation } }

    package func notifyAll() {
        let waiters = self.state.withLock { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// What ended a wait.
    package enum Wake: Sendable, Equatable {
        case notified
        case timedOut
        case cancelled
    }

    /// Returns at the next `notifyAll`, after `timeout`, or when the task is cancelled; at once when a notification
    /// came after `generation` was read as `since`.
    @discardableResult
    package func wait(since: UInt64? = nil, timeout: Duration) async -> Wake {
        let id = self.state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await withTaskGroup(of: Wake.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let resumeNow = self.state.withLock { state -> Bool in
                            if Task.isCancelled { return true }
                            if let since, state.generation != since { return true }
                            state.waiters[id] = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
                }
                return Task.isCancelled ? .cancelled : .notified
            }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                    return .timedOut
                } catch {
                    return .cancelled
                }
            }
            let wake = await group.next() ?? .cancelled
            group.cancelAll()
            return wake
        }
    }
}
