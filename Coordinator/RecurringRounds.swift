import Logging
import ServiceLifecycle

/// The loop every periodic coordinator service runs: a round of work, then a wait for the services' work signal
/// (news for them from anywhere in the farm) or the interval, until cancelled or shut down gracefully. A failed round
/// is logged and the next one tried, so a PostgreSQL restart is ridden out.
struct RecurringRounds: Sendable {
    var name: String
    var interval: Duration
    /// False for work due on the clock only (the reaper): notifications of new work do not make it due sooner.
    var waitsForSignal: Bool = true
    /// The rounds wait on `services`; a round tells `agents` of tasks it made leasable.
    var signals: WorkSignals
    var logger: Logger

    func run(_ round: @Sendable () async throws -> Void) async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let seen = self.signals.services.generation
            do {
                try await round()
            } catch is CancellationError {
                return
            } catch {
                self.logger.warning(
                    "\(self.name) round failed; retrying",
                    metadata: ["error": "\(String(reflecting: error))"]
                )
            }
            if self.waitsForSignal {
                await self.signals.services.wait(since: seen, timeout: self.interval)
            } else {
                try? await Task.sleep(for: self.interval)
            }
        }
    }
}

extension Duration {
    /// A configuration's seconds as a duration, to the millisecond.
    package static func seconds(configured seconds: Double) -> Duration { .milliseconds(Int64(seconds * 1000)) }

    /// The duration in seconds, as a configuration or a log gives them.
    package var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
