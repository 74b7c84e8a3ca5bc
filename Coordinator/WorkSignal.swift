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

/// The coordinator's two work signals, so news wakes only those it concerns: with hundreds of agent sessions waiting,
/// every wake-up of all of them is hundreds of lease queries that find nothing (at 800 slots that queue of futile
/// queries put lease latency at seconds). Agent sessions wait on `agents`; the planner, thumbnail, stitcher and
/// janitor rounds on `services`.
package struct WorkSignals: Sendable {
    package let agents = WorkSignal()
    package let services = WorkSignal()

    package init() {}

    /// Who a piece of news concerns.
    package struct Audience: OptionSet, Sendable {
        package let rawValue: Int
        package init(rawValue: Int) { self.rawValue = rawValue }

        /// Sessions waiting for a task to lease.
        package static let agents = Audience(rawValue: 1)
        /// The coordinator's own rounds (plan, thumbnails, stitch, clean up).
        package static let services = Audience(rawValue: 2)
        package static let everyone: Audience = [.agents, .services]
    }

    /// Who a NOTIFY on the work channel concerns, by its payload (`JobStore.notifyWork`); news of a kind not
    /// listed here wakes everyone.
    package static func audience(ofNotification payload: String) -> Audience {
        if payload.hasPrefix(JobStore.revokePrefix) { return .services }
        switch payload {
        // Tasks became leasable: a job was planned, a lease was given back or ran out.
        case "tasks": return .everyone
        case "released", "reaped": return .agents
        // A job to plan, a job to stitch, thumbnails to make: the coordinator's own work.
        case "job", "stitch", "thumbnails": return .services
        default: return .everyone
        }
    }

    package func notify(_ audience: Audience) {
        if audience.contains(.agents) { self.agents.notifyAll() }
        if audience.contains(.services) { self.services.notifyAll() }
    }
}
