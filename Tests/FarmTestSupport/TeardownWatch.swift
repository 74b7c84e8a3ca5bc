import Foundation
import Synchronization

/// Names the child tasks of a test harness that have not ended some time after they were cancelled, so a test that
/// hangs in teardown says which part of the farm ignored its cancellation instead of sitting silent; past `limit` it
/// ends the test process with a failure (`deploy/test.sh` prints the last "TEARDOWN STALL" line), because a task
/// that ignores cancellation would otherwise hold the whole run until its outer timeout.
package final class TeardownWatch: Sendable {
    private let label: String
    private let running = Mutex<[String: Int]>([:])
    private let watchdog = Mutex<Task<Void, Never>?>(nil)

    package init(_ label: String) { self.label = label }

    /// Runs `body`, counted as running under `name` until it returns.
    package func track<Result: Sendable>(
        _ name: String,
        _ body: () async throws -> Result
    ) async rethrows -> Result {
        self.running.withLock { $0[name, default: 0] += 1 }
        defer { self.running.withLock { $0[name, default: 1] -= 1 } }
        return try await body()
    }

    /// Starts reporting, every `interval`, the children still running after cancellation, and fails the run when they
    /// still run after `limit`.
    package func cancelled(interval: Duration = .seconds(20), limit: Duration = .seconds(120)) {
        let task = Task.detached { [label = self.label, running = self] in
            var waited = Duration.zero
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                waited += interval
                let left = running.running.withLock { $0.filter { $0.value > 0 }.keys.sorted() }
                let failing = waited >= limit
                let verdict = failing ? "; failing the run" : ""
                FileHandle.standardError.write(
                    Data(
                        "TEARDOWN STALL: \(label) still waits for \(left) \(waited) after cancellation\(verdict)\n".utf8
                    )
                )
                if failing { exit(70) }
            }
        }
        self.watchdog.withLock { $0 = task }
    }

    /// Ends the reporting: every child has ended.
    package func ended() { self.watchdog.withLock { $0 }?.cancel() }
}
