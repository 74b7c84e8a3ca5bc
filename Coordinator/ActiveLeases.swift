import FarmProtocol
import NIOCore
import Synchronization

/// The leases this coordinator's sessions hold right now, so a job that ends (cancelled, or failed by another task)
/// can revoke them on the agents at once instead of at their next heartbeat.
///
/// A revoke is written straight to the session's channel (channel writes are thread-safe and each message is one
/// frame); the session learns of it through `takeRevoked` before it handles the agent's next message.
package final class ActiveLeases: Sendable {
    private struct Held {
        var jobID: Int64
        var taskID: Int64
        var token: Int64
        var channel: any Channel
        var revoked: Bool
    }

    private let held = Mutex<[UInt64: Held]>([:])
    private let nextSession = Atomic<UInt64>(0)

    package init() {}

    /// A fresh key for one agent session.
    package func makeSessionKey() -> UInt64 {
        self.nextSession.wrappingAdd(1, ordering: .relaxed).newValue
    }

    package func hold(session: UInt64, jobID: Int64, taskID: Int64, token: Int64, channel: any Channel) {
        self.held.withLock {
            $0[session] = Held(jobID: jobID, taskID: taskID, token: token, channel: channel, revoked: false)
        }
    }

    package func release(session: UInt64) {
        _ = self.held.withLock { $0.removeValue(forKey: session) }
    }

    /// Sends a revoke for every lease of `jobID` held here; returns how many were revoked.
    @discardableResult
    package func revoke(jobID: Int64, reason: String) -> Int {
        let revoked = self.held.withLock { held -> [Held] in
            var revoked: [Held] = []
            for (session, lease) in held where lease.jobID == jobID && !lease.revoked {
                held[session]?.revoked = true
                revoked.append(lease)
            }
            return revoked
        }
        for lease in revoked {
            lease.channel.writeAndFlush(FarmMessage.revoke(.init(taskID: lease.taskID, reason: reason)), promise: nil)
        }
        return revoked.count
    }

    /// The session's lease if it was revoked since it was taken; the session then forgets it.
    package func takeRevoked(session: UInt64) -> (taskID: Int64, token: Int64)? {
        self.held.withLock { held in
            guard let lease = held[session], lease.revoked else { return nil }
            held.removeValue(forKey: session)
            return (lease.taskID, lease.token)
        }
    }
}
