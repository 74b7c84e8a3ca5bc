import FarmProtocol
import Foundation
import Logging
import NIOCore

/// What every agent session of one coordinator shares.
package struct CoordinatorContext: Sendable {
    package var store: JobStore
    package var signals: WorkSignals
    package var heartbeats: HeartbeatBatcher
    package var leases: ActiveLeases
    package var progress: ProgressPublisher
    package var configuration: CoordinatorConfiguration
    package var logger: Logger
    /// The agents connected here, by name.
    package var agents = ConnectedAgents()
}

/// One agent connection on the coordinator: carries out every action `AgentConnectionStateMachine` decides, and
/// feeds what each one's I/O learned back to the machine as its next event. The session decides nothing itself.
final class AgentSession {
    typealias Action = AgentConnectionStateMachine.Action

    /// What carrying out an action leads to.
    enum Next {
        /// The machine's answer to the action's outcome, to carry out at once.
        case perform(Action)
        case readNextMessage
        case stopReading
    }

    let channel: NIOAsyncChannel<FarmMessage, FarmMessage>
    let context: CoordinatorContext
    var machine = AgentConnectionStateMachine(nonce: ClusterSecret.makeNonce())
    var logger: Logger
    /// The files of the lease the machine says is staging (`AgentConnectionStateMachine.Staging`): made when it says
    /// the lease's first piece arrived, dropped when it ends the lease. Only the I/O object lives here; whether and
    /// for which lease it exists is the machine's decision.
    var staged: StagedResult?
    /// This session's key in `context.leases`.
    let sessionKey: UInt64
    /// Cuts off an agent that does not finish the handshake in time; cancelled when it is welcomed.
    private var handshakeDeadline: Scheduled<Void>?
    /// The agent was asked to drain before this connection was welcomed.
    private var drainOnWelcome = false

    init(channel: NIOAsyncChannel<FarmMessage, FarmMessage>, context: CoordinatorContext) {
        self.channel = channel
        self.context = context
        self.logger = context.logger
        self.sessionKey = context.leases.makeSessionKey()
        self.logger[metadataKey: "peer"] = "\(channel.channel.remoteAddress?.description ?? "?")"
    }

    func run() async {
        // An agent that does not finish the handshake in time is cut off, so half-open connections cost nothing.
        let handshakeDeadline = self.channel.channel.eventLoop.scheduleTask(in: .seconds(10)) {
            [channel = self.channel.channel] in
            channel.close(promise: nil)
        }
        self.handshakeDeadline = handshakeDeadline
        do {
            try await self.channel.executeThenClose { inbound, outbound in
                for try await message in inbound {
                    // A lease revoked since the last message (its job ended) is over before this message is read.
                    if let revoked = self.context.leases.takeRevoked(session: self.sessionKey) {
                        let action = self.machine.leaseRevoked(taskID: revoked.taskID, token: revoked.token)
                        guard try await self.execute(action, outbound: outbound) else { break }
                    }
                    let action = self.machine.received(message) { authenticate, nonce, name in
                        self.context.configuration.secret.verify(
                            proof: authenticate.proof,
                            nonce: nonce,
                            agentName: name
                        )
                    }
                    guard try await self.execute(action, outbound: outbound) else { break }
                }
            }
        } catch is CancellationError {
            self.logger.debug("agent connection closed: coordinator stopping")
        } catch {
            self.logger.warning("agent connection closed with an error", metadata: ["error": "\(error)"])
        }
        handshakeDeadline.cancel()
        await self.connectionEnded()
    }

    /// Carries out `action` and every action the machine answers their outcomes with; false when the connection is
    /// to close.
    func execute(_ action: Action, outbound: NIOAsyncChannelOutboundWriter<FarmMessage>) async throws -> Bool {
        var next = try await self.perform(action, outbound: outbound)
        while true {
            switch next {
            case .perform(let action): next = try await self.perform(action, outbound: outbound)
            case .readNextMessage: return true
            case .stopReading: return false
            }
        }
    }

    private func connectionEnded() async {
        switch self.machine.connectionClosed() {
        case .cleanUp:
            await self.cleanUp()
        case .giveBackTask(let taskID, let token, let agentName):
            await self.cleanUp()
            // The agent is gone mid-task: give the task back now rather than when its lease runs out.
            self.logger.warning(
                "agent disconnected while working; requeueing its task",
                metadata: ["task": "\(taskID)"]
            )
            _ = try? await self.context.store.fail(
                taskID: taskID,
                token: token,
                agentName: agentName,
                message: "the agent disconnected mid-task",
                retryable: true
            )
            self.context.signals.notify(.agents)
        }
    }

    private func cleanUp() async {
        self.context.leases.release(session: self.sessionKey)
        self.dropStaged()
        if let agent = self.context.agents.remove(session: self.sessionKey) {
            try? await self.context.store.agentLeft(name: agent.name, instance: agent.instance)
        }
    }

    func dropStaged() {
        self.staged?.discard()
        self.staged = nil
    }

    private func perform(_ action: Action, outbound: NIOAsyncChannelOutboundWriter<FarmMessage>) async throws -> Next {
        switch action {
        case .wait:
            return .readNextMessage

        case .sendChallenge(let challenge):
            try await outbound.write(.challenge(challenge))
            return .readNextMessage

        case .register(let agentName, let capabilities):
            let registration = try await self.context.store.registerAgent(
                name: agentName,
                capabilities: capabilities,
                coordinator: self.context.configuration.name
            )
            self.logger[metadataKey: "agent"] = "\(agentName)"
            switch registration {
            case .registered(let agentID, let draining):
                self.context.agents.add(
                    session: self.sessionKey,
                    name: agentName,
                    instance: capabilities.instance,
                    channel: self.channel.channel
                )
                self.drainOnWelcome = draining
                return .perform(self.machine.registered(agentID: agentID))
            case .nameTaken(let coordinator, let secondsAgo):
                return .perform(self.machine.nameTaken(coordinator: coordinator, secondsAgo: secondsAgo))
            }

        case .sendWelcome(let agentID):
            self.logger.info("agent joined", metadata: ["agentID": "\(agentID)"])
            try await outbound.write(
                .welcome(
                    .init(
                        agentID: agentID,
                        heartbeatIntervalSeconds: self.context.configuration.heartbeatIntervalSeconds
                    )
                )
            )
            self.handshakeDeadline?.cancel()
            // A drain asked for before this connection came (another slot's, or before a reconnect) holds for it.
            if self.drainOnWelcome { try await outbound.write(.drain) }
            return .readNextMessage

        case .findWork(let agentID, let agentName, let waitingSince):
            return .perform(try await self.findWork(agentID: agentID, agentName: agentName, waitingSince: waitingSince))

        case .failUnpreparedTask(let jobID, let taskID, let token, let agentName, let message, let retryable):
            try await self.failUnpreparedTask(
                jobID: jobID,
                taskID: taskID,
                token: token,
                agentName: agentName,
                message: message,
                retryable: retryable
            )
            return .perform(self.machine.unpreparedTaskFailed())

        case .sendLeaseAndSource(let found):
            try await self.sendLeaseAndSource(found, outbound: outbound)
            return .readNextMessage

        case .releaseLease(let taskID, let token):
            self.context.leases.release(session: self.sessionKey)
            try? await self.context.store.releaseLease(taskID: taskID, token: token)
            return .readNextMessage

        case .extendLease(let taskID, let token):
            let held = try await self.context.heartbeats.renew(taskID: taskID, token: token)
            return .perform(self.machine.leaseRenewed(taskID: taskID, token: token, held: held))

        case .acknowledgeHeartbeat(let taskID):
            try await outbound.write(.heartbeatAck(.init(taskID: taskID, leaseHeld: true)))
            return .readNextMessage

        case .reportLeaseLost(let taskID):
            try await outbound.write(.heartbeatAck(.init(taskID: taskID, leaseHeld: false)))
            return .readNextMessage

        case .abandonLease(let taskID, _):
            self.logger.warning(
                "heartbeat for a lease no longer held; telling the agent to stop",
                metadata: ["task": "\(taskID)"]
            )
            self.dropStaged()
            try await outbound.write(.heartbeatAck(.init(taskID: taskID, leaseHeld: false)))
            self.context.leases.release(session: self.sessionKey)
            return .readNextMessage

        case .forgetRevokedLease(let taskID, _):
            self.logger.info("lease revoked: its job ended", metadata: ["task": "\(taskID)"])
            self.dropStaged()
            return .readNextMessage

        case .storeSegmentData(let header, let body, let staging, let isFirstPiece):
            try self.storeSegmentData(header, body: body, staging: staging, isFirstPiece: isFirstPiece)
            return .readNextMessage

        case .discardStaleData(let taskID, let token):
            self.logger.debug(
                "dropped segment data of a lost lease",
                metadata: ["task": "\(taskID)", "token": "\(token)"]
            )
            return .readNextMessage

        case .commit(let complete, let agentName):
            try await self.commit(complete, agentName: agentName, outbound: outbound)
            self.context.leases.release(session: self.sessionKey)
            return .readNextMessage

        case .rejectAndFail(let complete, let agentName, let reason):
            self.dropStaged()
            try await self.rejectAndFail(complete, agentName: agentName, reason: reason, outbound: outbound)
            self.context.leases.release(session: self.sessionKey)
            return .readNextMessage

        case .recordFailure(let failed, let agentName):
            try await self.recordFailure(failed, agentName: agentName)
            self.context.leases.release(session: self.sessionKey)
            return .readNextMessage

        case .rejectStale(let taskID, let token, let reason):
            self.logger.warning(
                "refused a result for a lease this connection no longer holds",
                metadata: ["task": "\(taskID)", "token": "\(token)", "reason": "\(reason)"]
            )
            try await outbound.write(
                .resultRejected(.init(taskID: taskID, token: token, reason: "stale lease: \(reason)"))
            )
            return .readNextMessage

        case .refuseAndClose(let reason):
            self.logger.warning("refused an agent", metadata: ["reason": "\(reason)"])
            try? await outbound.write(.refused(.init(reason: reason)))
            return .stopReading

        case .closeWithError(let error):
            self.logger.warning("closing agent connection", metadata: ["reason": "\(error)"])
            try? await outbound.write(.refused(.init(reason: error.description)))
            throw error
        }
    }
}
