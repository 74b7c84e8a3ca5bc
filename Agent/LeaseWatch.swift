import FarmProtocol
import Synchronization

/// What the reader task and the work task share about the current lease.
final class LeaseWatch: Sendable {
    private struct State {
        var taskID: Int64?
        var lost = false
        var lastRenewal = ContinuousClock.now
        var leaseDuration = Duration.seconds(30)
        var progress = 0.0
        var draining = false
    }

    private let state = Mutex(State())

    func begin(taskID: Int64, leaseSeconds: Double) {
        self.state.withLock {
            $0.taskID = taskID
            $0.lost = false
            $0.lastRenewal = .now
            $0.leaseDuration = .milliseconds(Int64(leaseSeconds * 1000))
            $0.progress = 0
        }
    }

    func end() { self.state.withLock { $0.taskID = nil } }

    func acknowledged(_ ack: FarmMessage.HeartbeatAck) {
        self.state.withLock {
            guard $0.taskID == ack.taskID else { return }
            if ack.leaseHeld { $0.lastRenewal = .now } else { $0.lost = true }
        }
    }

    /// Marks the task in hand as lost; false when the revoke names another task (one already given up).
    func revoked(taskID: Int64) -> Bool {
        self.state.withLock {
            guard $0.taskID == taskID else { return false }
            $0.lost = true
            return true
        }
    }

    /// True while the lease is this agent's. The agent fences itself: if no renewal came within the lease's length
    /// on its own clock, the coordinator may have given the task to someone else, so it stops.
    var isHeld: Bool {
        self.state.withLock { state in
            if state.lost { return false }
            if ContinuousClock.now - state.lastRenewal > state.leaseDuration {
                state.lost = true
                return false
            }
            return true
        }
    }

    var progress: Double {
        get { self.state.withLock { $0.progress } }
        set { self.state.withLock { $0.progress = newValue } }
    }

    /// Marks the agent as draining; true when it is idle (no task in hand) and can stop at once.
    func markDraining() -> Bool {
        self.state.withLock {
            $0.draining = true
            return $0.taskID == nil
        }
    }

    var isDraining: Bool { self.state.withLock { $0.draining } }
}
