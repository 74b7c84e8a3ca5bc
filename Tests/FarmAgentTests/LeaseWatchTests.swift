import FarmProtocol
import Testing

@testable import FarmAgent

/// The agent fences itself on its own clock: a lease it cannot renew is given up when the lease's length has passed
/// since the last renewal, whatever the coordinator does, so a partitioned agent stops before its task is handed on.
@Suite("Lease watch")
struct LeaseWatchTests {
    @Test func aLeaseNotRenewedWithinItsLengthIsGivenUp() async throws {
        let watch = LeaseWatch()
        watch.begin(taskID: 5, leaseSeconds: 0.3)
        #expect(watch.isHeld)
        try await Task.sleep(for: .milliseconds(450))
        #expect(!watch.isHeld, "still held 0.45 s into a 0.3 s lease with no renewal")
        // Lost for good: a late acknowledgement does not bring it back.
        watch.acknowledged(.init(taskID: 5, leaseHeld: true))
        #expect(!watch.isHeld)
    }

    @Test func eachRenewalStartsTheLeaseAgain() async throws {
        let watch = LeaseWatch()
        // Margins of a second or more, so a loaded machine's late wake-ups do not decide the outcome.
        watch.begin(taskID: 5, leaseSeconds: 1.5)
        for _ in 0..<4 {
            try await Task.sleep(for: .milliseconds(500))
            watch.acknowledged(.init(taskID: 5, leaseHeld: true))
        }
        #expect(watch.isHeld, "renewed every 0.5 s, held 2 s into a 1.5 s lease")
        // An acknowledgement for another task renews nothing.
        try await Task.sleep(for: .milliseconds(800))
        watch.acknowledged(.init(taskID: 6, leaseHeld: true))
        try await Task.sleep(for: .milliseconds(900))
        #expect(!watch.isHeld)
    }

    @Test func theCoordinatorSayingTheLeaseIsLostOrRevokedStopsTheTask() {
        let lost = LeaseWatch()
        lost.begin(taskID: 5, leaseSeconds: 30)
        lost.acknowledged(.init(taskID: 5, leaseHeld: false))
        #expect(!lost.isHeld)

        let revoked = LeaseWatch()
        revoked.begin(taskID: 5, leaseSeconds: 30)
        #expect(!revoked.revoked(taskID: 4), "a revoke for a task given up before changes nothing")
        #expect(revoked.isHeld)
        #expect(revoked.revoked(taskID: 5))
        #expect(!revoked.isHeld)
    }

    @Test func drainingStopsAtOnceOnlyWhenIdle() {
        let busy = LeaseWatch()
        busy.begin(taskID: 5, leaseSeconds: 30)
        #expect(!busy.markDraining(), "a task in hand is finished first")
        #expect(busy.isDraining)
        busy.end()
        #expect(LeaseWatch().markDraining())
    }
}
