import Testing

@testable import FarmCoordinator

@Suite("Work signal")
struct WorkSignalTests {
    /// A notification between a loop's look for work and its wait (a NOTIFY while it queried) wakes it at once.
    @Test func aNotificationBeforeTheWaitIsNotLost() async {
        let signal = WorkSignal()
        let seen = signal.generation
        signal.notifyAll()
        let started = ContinuousClock.now
        await signal.wait(since: seen, timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func aWaiterSleepsUntilTheNextNotification() async {
        let signal = WorkSignal()
        let started = ContinuousClock.now
        let seen = signal.generation
        async let waited: Void = signal.wait(since: seen, timeout: .seconds(20))
        try? await Task.sleep(for: .milliseconds(300))
        signal.notifyAll()
        await waited
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(5), "\(elapsed)")
    }

    @Test func withoutANotificationTheWaitEndsAtItsTimeout() async {
        let signal = WorkSignal()
        let started = ContinuousClock.now
        await signal.wait(since: signal.generation, timeout: .milliseconds(300))
        #expect(ContinuousClock.now - started >= .milliseconds(250))
    }
}
