import FarmProtocol
import NIOCore
import Synchronization

/// The agents whose sessions this coordinator holds, by name: which to mark seen, which to tell to drain, and when
/// an agent's last session here has closed.
///
/// A drain is written straight to each session's channel (channel writes are thread-safe, one frame each), as
/// `ActiveLeases` does with revokes.
package final class ConnectedAgents: Sendable {
    private struct Session {
        var name: String
        var instance: String?
        var channel: any Channel
    }

    private let sessions = Mutex<[UInt64: Session]>([:])

    package init() {}

    package func add(session: UInt64, name: String, instance: String?, channel: any Channel) {
        self.sessions.withLock { $0[session] = Session(name: name, instance: instance, channel: channel) }
    }

    /// Forgets the session; returns its agent when it was the agent's last session here.
    package func remove(session: UInt64) -> (name: String, instance: String?)? {
        self.sessions.withLock { sessions in
            guard let removed = sessions.removeValue(forKey: session) else { return nil }
            let others = sessions.values.contains { $0.name == removed.name && $0.instance == removed.instance }
            return others ? nil : (removed.name, removed.instance)
        }
    }

    /// The names of the agents connected here.
    package var names: [String] { Array(Set(self.sessions.withLock { $0.values.map(\.name) })).sorted() }

    /// Tells every session of `name` here to drain; returns how many were told.
    @discardableResult
    package func drain(name: String) -> Int {
        let channels = self.sessions.withLock { $0.values.filter { $0.name == name }.map(\.channel) }
        for channel in channels { channel.writeAndFlush(FarmMessage.drain, promise: nil) }
        return channels.count
    }
}
