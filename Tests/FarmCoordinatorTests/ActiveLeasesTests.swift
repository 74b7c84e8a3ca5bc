import FarmCoordinator
import FarmProtocol
import NIOEmbedded
import Testing

/// The revoke push: ending a job must reach every session holding one of its leases, once, and no other session.
@Suite("Active leases")
struct ActiveLeasesTests {
    @Test func revokingAJobReachesEachOfItsSessionsOnce() throws {
        let leases = ActiveLeases()
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        let sessions = channels.map { _ in leases.makeSessionKey() }
        #expect(Set(sessions).count == 3)
        leases.hold(session: sessions[0], jobID: 1, taskID: 10, token: 100, channel: channels[0])
        leases.hold(session: sessions[1], jobID: 1, taskID: 11, token: 101, channel: channels[1])
        leases.hold(session: sessions[2], jobID: 2, taskID: 20, token: 200, channel: channels[2])

        #expect(leases.revoke(jobID: 1, reason: "job 1 cancelled") == 2)
        #expect(leases.revoke(jobID: 1, reason: "job 1 cancelled") == 0, "a second NOTIFY sends nothing again")
        for (index, taskID) in [(0, 10 as Int64), (1, 11)] {
            let sent = try #require(try channels[index].readOutbound(as: FarmMessage.self))
            guard case .revoke(let revoke) = sent else {
                Issue.record("session \(index) got \(sent), not a revoke")
                continue
            }
            #expect(revoke.taskID == taskID)
            #expect(revoke.reason == "job 1 cancelled")
            #expect(try channels[index].readOutbound(as: FarmMessage.self) == nil)
        }
        #expect(try channels[2].readOutbound(as: FarmMessage.self) == nil, "job 2's agent is left alone")

        let taken = try #require(leases.takeRevoked(session: sessions[0]))
        #expect(taken.taskID == 10 && taken.token == 100)
        #expect(leases.takeRevoked(session: sessions[0]) == nil, "the session forgets the lease once")
        #expect(leases.takeRevoked(session: sessions[2]) == nil, "an unrevoked lease is not taken")

        // A session that released its lease (task finished) before the job ended is not revoked.
        leases.release(session: sessions[2])
        #expect(leases.revoke(jobID: 2, reason: "job 2 failed") == 0)
        #expect(try channels[2].readOutbound(as: FarmMessage.self) == nil)
    }
}
