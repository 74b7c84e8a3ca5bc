import FarmProtocol

/// The life of one agent connection on the coordinator's side, as a pure state machine: it decides, the session
/// (`AgentSession`) does the I/O. Tested without sockets or a database.
package struct AgentConnectionStateMachine {
    package struct CurrentLease: Equatable {
        package var taskID: Int64
        package var token: Int64
        package var spec: TaskSpec
    }

    package enum State: Equatable {
        case awaitingHello
        case awaitingProof(nonce: String, agentName: String)
        case registering(agentName: String)
        case idle(agentID: Int64, agentName: String)
        case working(agentID: Int64, agentName: String, lease: CurrentLease)
        case closed
    }

    package enum Action: Equatable {
        case sendChallenge(FarmMessage.Challenge)
        case register(agentName: String, capabilities: FarmMessage.Capabilities)
        case sendWelcome(agentID: Int64)
        case findWork(agentID: Int64, agentName: String)
        case sendLeaseAndSource
        case extendLease(taskID: Int64, token: Int64)
        /// Tell the agent this lease is not its own (any more): it must stop working on it.
        case reportLeaseLost(taskID: Int64)
        case storeSegmentData
        case discardStaleData(taskID: Int64, token: Int64)
        case commit(FarmMessage.TaskComplete, agentName: String)
        case recordFailure(FarmMessage.TaskFailed, agentName: String)
        /// A result or failure for a lease this connection no longer holds.
        case rejectStale(taskID: Int64, token: Int64, reason: String)
        case refuseAndClose(String)
        case closeWithError(FarmProtocolError)
    }

    package private(set) var state: State = .awaitingHello

    package init() {}

    /// Agent names are logged and stored; keep them to a safe alphabet (the HMAC message separates fields with
    /// newlines, so a newline in a name must not be possible).
    package static func isValidAgentName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy {
                $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
            }
            && name.unicodeScalars.allSatisfy(\.isASCII)
    }

    package mutating func received(
        _ message: FarmMessage,
        nonce: String,
        proofIsValid: (FarmMessage.Authenticate, String, String) -> Bool
    ) -> Action {
        switch (self.state, message) {
        case (.awaitingHello, .hello(let hello)):
            guard hello.protocolVersion == farmProtocolVersion else {
                self.state = .closed
                return .refuseAndClose(
                    FarmProtocolError.versionMismatch(peer: hello.protocolVersion, ours: farmProtocolVersion)
                        .description
                )
            }
            guard Self.isValidAgentName(hello.agentName) else {
                self.state = .closed
                return .refuseAndClose(
                    "agent name \(hello.agentName.debugDescription) is invalid: use 1 to 64 letters, digits, '.', '_' or '-'"
                )
            }
            self.state = .awaitingProof(nonce: nonce, agentName: hello.agentName)
            return .sendChallenge(FarmMessage.Challenge(nonce: nonce))

        case (.awaitingProof(let expectedNonce, let agentName), .authenticate(let authenticate)):
            guard proofIsValid(authenticate, expectedNonce, agentName) else {
                self.state = .closed
                return .refuseAndClose(FarmProtocolError.authenticationFailed.description)
            }
            guard authenticate.capabilities.slots >= 1 else {
                self.state = .closed
                return .refuseAndClose(
                    "the agent announced \(authenticate.capabilities.slots) slots: it needs at least 1"
                )
            }
            self.state = .registering(agentName: agentName)
            return .register(agentName: agentName, capabilities: authenticate.capabilities)

        case (.idle(let agentID, let agentName), .leaseRequest):
            return .findWork(agentID: agentID, agentName: agentName)

        case (.working(_, _, let lease), .heartbeat(let heartbeat)):
            guard heartbeat.taskID == lease.taskID, heartbeat.token == lease.token else {
                return .reportLeaseLost(taskID: heartbeat.taskID)
            }
            return .extendLease(taskID: heartbeat.taskID, token: heartbeat.token)
        case (.idle, .heartbeat(let heartbeat)):
            return .reportLeaseLost(taskID: heartbeat.taskID)

        case (.working(_, _, let lease), .segmentData(let header, _)):
            guard header.taskID == lease.taskID, header.token == lease.token else {
                return .closeWithError(
                    .unexpected(
                        "segment data for task \(header.taskID) token \(header.token), "
                            + "the connection's lease is task \(lease.taskID) token \(lease.token)"
                    )
                )
            }
            return .storeSegmentData

        case (.idle, .segmentData(let header, _)):
            // The upload of a lease this connection lost (a heartbeat was refused): dropped without touching the
            // output; the result is refused as stale when its report arrives.
            return .discardStaleData(taskID: header.taskID, token: header.token)

        case (.working(let agentID, let agentName, let lease), .taskComplete(let complete)):
            guard complete.taskID == lease.taskID, complete.token == lease.token else {
                return .rejectStale(
                    taskID: complete.taskID,
                    token: complete.token,
                    reason: "not this connection's lease"
                )
            }
            self.state = .idle(agentID: agentID, agentName: agentName)
            return .commit(complete, agentName: agentName)
        case (.idle(_, _), .taskComplete(let complete)):
            return .rejectStale(taskID: complete.taskID, token: complete.token, reason: "the lease was given up")

        case (.working(let agentID, let agentName, let lease), .taskFailed(let failed)):
            guard failed.taskID == lease.taskID, failed.token == lease.token else {
                return .rejectStale(taskID: failed.taskID, token: failed.token, reason: "not this connection's lease")
            }
            self.state = .idle(agentID: agentID, agentName: agentName)
            return .recordFailure(failed, agentName: agentName)
        case (.idle(_, _), .taskFailed(let failed)):
            return .rejectStale(taskID: failed.taskID, token: failed.token, reason: "the lease was given up")

        case (.closed, _):
            return .closeWithError(.unexpected("message after the connection was closed"))

        default:
            let action = Action.closeWithError(.unexpected("\(message.kind) while \(self.stateName)"))
            // A lease in hand is kept so the session can give the task back at once when the connection closes.
            if case .working = self.state { return action }
            self.state = .closed
            return action
        }
    }

    package mutating func registered(agentID: Int64) -> Action {
        guard case .registering(let agentName) = self.state else {
            return .closeWithError(.unexpected("registration finished while \(self.stateName)"))
        }
        self.state = .idle(agentID: agentID, agentName: agentName)
        return .sendWelcome(agentID: agentID)
    }

    package mutating func leased(taskID: Int64, token: Int64, spec: TaskSpec) -> Action {
        guard case .idle(let agentID, let agentName) = self.state else {
            return .closeWithError(.unexpected("lease granted while \(self.stateName)"))
        }
        self.state = .working(
            agentID: agentID,
            agentName: agentName,
            lease: CurrentLease(taskID: taskID, token: token, spec: spec)
        )
        return .sendLeaseAndSource
    }

    /// The lease was lost (heartbeat refused, source could not be prepared): forget it.
    package mutating func leaseEnded() {
        if case .working(let agentID, let agentName, _) = self.state {
            self.state = .idle(agentID: agentID, agentName: agentName)
        }
    }

    package var currentLease: CurrentLease? {
        if case .working(_, _, let lease) = self.state { return lease }
        return nil
    }

    package var isAuthenticated: Bool {
        switch self.state {
        case .idle, .working: true
        default: false
        }
    }

    private var stateName: String {
        switch self.state {
        case .awaitingHello: "awaiting hello"
        case .awaitingProof: "awaiting authentication"
        case .registering: "registering"
        case .idle: "idle"
        case .working: "working on a task"
        case .closed: "closed"
        }
    }
}
