import Synchronization

extension Mutex {
    /// A shared box around a mutex, for a value several concurrent test tasks update.
    package final class Reference: Sendable {
        package let mutex: Mutex<Value>
        package init(_ value: sending Value) { self.mutex = Mutex(value) }
    }
}
