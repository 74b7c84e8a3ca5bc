import Testing

@testable import FarmCoordinator

/// What ends each wait is asserted from the wait's own answer, not from how long it took: a loaded machine makes
/// waits longer, never a notified wait a timed-out one.
@Suite("Work signal")
struct WorkSignalTests {
    /// A notification between a loop's look for work and its wait (a NOTIFY while it queried) wakes it at once.
    @Test func aNotificationBeforeTheWaitIsNotLost() async {
        let signal = WorkSignal()
        let seen = signal.generation
        signal.notifyAll()
        #expect(await signal.wait(since: seen, timeout: .seconds(20)) == .notified)
    }

    @Test func aWaiterSleepsUntilTheNextNotification() async {
        let signal = WorkSignal()
        let started = ContinuousClock.now
        let seen = signal.generation
        async let waited = signal.wait(since: seen, timeout: .seconds(20))
        try? await Task.sleep(for: .milliseconds(300))
        signal.notifyAll()
        #expect(await waited == .notified)
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(250), "woke after \(elapsed), before the notification")
    }

    @Test func withoutANotificationTheWaitEndsAtItsTimeout() async {
        let signal = WorkSignal()
        let started = ContinuousClock.now
        #expect(await signal.wait(since: signal.generation, timeout: .milliseconds(300)) == .timedOut)
        #expect(ContinuousClock.now - started >= .milliseconds(250))
    }

    @Test func aCancelledWaitEndsAtOnce() async {
        let signal = WorkSignal()
        let waiting = Task { await signal.wait(since: signal.generation, timeout: .seconds(20)) }
        waiting.cancel()
        #expect(await waiting.value == .cancelled)
    }

    /// News wakes only those it concerns: a job ready to stitch wakes no agent session (at 800 waiting sessions each
    /// futile wake-up of them all is 800 lease queries), and tasks becoming leasable wake them.
    @Test func notificationsWakeOnlyThoseTheyConcern() async {
        #expect(WorkSignals.audience(ofNotification: "tasks") == .everyone)
        #expect(WorkSignals.audience(ofNotification: "released") == .agents)
        #expect(WorkSignals.audience(ofNotification: "reaped") == .agents)
        for payload in ["job", "stitch", "thumbnails", JobStore.revokePrefix + "12"] {
            #expect(WorkSignals.audience(ofNotification: payload) == .services, "\(payload)")
        }
        #expect(WorkSignals.audience(ofNotification: "something new") == .everyone)

        let signals = WorkSignals()
        let agentsSeen = signals.agents.generation
        let servicesSeen = signals.services.generation
        signals.notify(.services)
        #expect(signals.agents.generation == agentsSeen, "a stitch wakes no session")
        #expect(signals.services.generation != servicesSeen)
        signals.notify(.agents)
        #expect(await signals.agents.wait(since: agentsSeen, timeout: .seconds(20)) == .notified)
    }
}
