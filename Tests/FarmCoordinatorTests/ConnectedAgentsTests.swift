import FarmCoordinator
import FarmProtocol
import NIOEmbedded
import Testing

/// The coordinator's sessions by agent: a drain reaches every slot of the named agent and no other, and the
/// agent has left only when its last session here has closed.
@Suite("Connected agents")
struct ConnectedAgentsTests {
    @Test func aDrainReachesEverySessionOfTheAgentAndTheLastToCloseMarksItGone() throws {
        let agents = ConnectedAgents()
        let channels = (0..<3).map { _ in EmbeddedChannel() }
        agents.add(session: 1, name: "a1", instance: "i1", channel: channels[0])
        agents.add(session: 2, name: "a1", instance: "i1", channel: channels[1])
        agents.add(session: 3, name: "a2", instance: "i2", channel: channels[2])
        #expect(agents.names == ["a1", "a2"])

        #expect(agents.drain(name: "a1") == 2)
        for channel in channels.prefix(2) {
            #expect(try channel.readOutbound(as: FarmMessage.self) == .drain)
        }
        #expect(try channels[2].readOutbound(as: FarmMessage.self) == nil, "a2 is left alone")
        #expect(agents.drain(name: "nobody") == 0)

        #expect(agents.remove(session: 1) == nil, "a1 still has a slot here")
        let left = try #require(agents.remove(session: 2))
        #expect(left.name == "a1" && left.instance == "i1")
        #expect(agents.remove(session: 2) == nil, "a session is forgotten once")
        #expect(agents.names == ["a2"])
    }

    @Test func leasedTasksAreReadBackFromTheAgentsQuery() {
        let tasks = JobStore.leasedTasks("3:12:240p,360p 3:14:audio")
        #expect(tasks.map(\.jobID) == [3, 3] && tasks.map(\.taskID) == [12, 14])
        #expect(tasks.map(\.rendition) == ["240p,360p", "audio"])
        #expect(JobStore.leasedTasks("").isEmpty)
    }
}
