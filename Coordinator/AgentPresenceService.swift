import Logging
import ServiceLifecycle

/// Marks the agents connected here as seen, every heartbeat interval: an agent whose coordinator stops doing so
/// (it died, or lost its network) is gone after `JobStore.agentGoneAfterSeconds`, and its name free again.
struct AgentPresenceService: Service {
    var store: JobStore
    var agents: ConnectedAgents
    var rounds: RecurringRounds

    func run() async {
        await self.rounds.run { try await self.store.markAgentsSeen(self.agents.names) }
    }
}
