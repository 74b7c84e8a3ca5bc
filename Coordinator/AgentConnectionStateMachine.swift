import FarmProtocol
import NIOCore

/// The life of one agent connection on the coordinator's side, as a pure state machine: it decides, the session
/// (`AgentSession`) does the I/O. Every input is an event (a message received, the outcome of a store call the
/// session made, a revoke, the connection closing) that returns the one action the session carries out next, in the
/// style of postgres-nio's `ConnectionStateMachine`. Tested without sockets or a database.
package struct AgentConnectionStateMachine {
    package private(set) var state: State = .awaitingHello
    /// The challenge's nonce: made once per connection, before the agent says hello.
    private let nonce: String

    /// - Parameter nonce: a fresh random nonce (`ClusterSecret.makeNonce`), sent in the challenge.
    package init(nonce: String) {
        self.nonce = nonce
    }

    /// Agent names are logged and stored; keep them to a safe alphabet (the HMAC message separates fields with
    /// newlines, so a newline in a name must not be possible).
    package static func isValidAgentName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy {
                $0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
            }
            && name.unicodeScalars.allSatisfy(\.isASCII)
    }

    // MARK: Messages

    /// Every message in every state: those a state does not expect are listed with it, and close the connection.
    package mutating func received(
        _ message: FarmMessage,
        proofIsValid: (FarmMessage.Authenticate, String, String) -> Bool
    ) -> Action {
        switch self.state {
        case .awaitingHello:
            switch message {
            case .hello(let hello):
                return self.helloReceived(hello)
            case .challenge, .authenticate, .welcome, .refused, .leaseRequest, .lease, .sourceData, .sourceEnd,
                .heartbeat, .heartbeatAck, .segmentData, .taskComplete, .taskFailed, .resultAccepted, .resultRejected,
                .revoke, .drain:
                return self.unexpected(message)
            }

        case .awaitingProof(let expectedNonce, let agentName):
            switch message {
            case .authenticate(let authenticate):
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
            case .hello, .challenge, .welcome, .refused, .leaseRequest, .lease, .sourceData, .sourceEnd, .heartbeat,
                .heartbeatAck, .segmentData, .taskComplete, .taskFailed, .resultAccepted, .resultRejected, .revoke,
                .drain:
                return self.unexpected(message)
            }

        case .registering:
            switch message {
            case .hello, .challenge, .authenticate, .welcome, .refused, .leaseRequest, .lease, .sourceData,
                .sourceEnd, .heartbeat, .heartbeatAck, .segmentData, .taskComplete, .taskFailed, .resultAccepted,
                .resultRejected, .revoke, .drain:
                return self.unexpected(message)
            }

        case .idle(let agentID, let agentName):
            switch message {
            case .leaseRequest:
                return .findWork(agentID: agentID, agentName: agentName)
            case .heartbeat(let heartbeat):
                return .reportLeaseLost(taskID: heartbeat.taskID)
            case .segmentData(let header, _):
                // The upload of a lease this connection lost (a heartbeat was refused): dropped without touching the
                // output; the result is refused as stale when its report arrives.
                return .discardStaleData(taskID: header.taskID, token: header.token)
            case .taskComplete(let complete):
                return .rejectStale(taskID: complete.taskID, token: complete.token, reason: "the lease was given up")
            case .taskFailed(let failed):
                return .rejectStale(taskID: failed.taskID, token: failed.token, reason: "the lease was given up")
            case .hello, .challenge, .authenticate, .welcome, .refused, .lease, .sourceData, .sourceEnd,
                .heartbeatAck, .resultAccepted, .resultRejected, .revoke, .drain:
                return self.unexpected(message)
            }

        case .working(let agentID, let agentName, var assignment):
            let lease = assignment.lease
            switch message {
            case .heartbeat(let heartbeat):
                guard heartbeat.taskID == lease.taskID, heartbeat.token == lease.token else {
                    return .reportLeaseLost(taskID: heartbeat.taskID)
                }
                return .extendLease(taskID: heartbeat.taskID, token: heartbeat.token)
            case .segmentData(let header, let body):
                guard header.taskID == lease.taskID, header.token == lease.token else {
                    return .closeWithError(
                        .unexpected(
                            "segment data for task \(header.taskID) token \(header.token), "
                                + "the connection's lease is task \(lease.taskID) token \(lease.token)"
                        )
                    )
                }
                let isFirstPiece = !assignment.isStaging
                assignment.isStaging = true
                self.state = .working(agentID: agentID, agentName: agentName, assignment: assignment)
                return .storeSegmentData(
                    header,
                    body,
                    staging: Staging(lease: lease, outputDirectory: assignment.outputDirectory),
                    isFirstPiece: isFirstPiece
                )
            case .taskComplete(let complete):
                guard complete.taskID == lease.taskID, complete.token == lease.token else {
                    return .rejectStale(
                        taskID: complete.taskID,
                        token: complete.token,
                        reason: "not this connection's lease"
                    )
                }
                self.state = .idle(agentID: agentID, agentName: agentName)
                guard assignment.isStaging else {
                    return .rejectAndFail(
                        complete,
                        agentName: agentName,
                        reason: "no segment data was received for this result"
                    )
                }
                return .commit(complete, agentName: agentName)
            case .taskFailed(let failed):
                guard failed.taskID == lease.taskID, failed.token == lease.token else {
                    return .rejectStale(
                        taskID: failed.taskID,
                        token: failed.token,
                        reason: "not this connection's lease"
                    )
                }
                self.state = .idle(agentID: agentID, agentName: agentName)
                return .recordFailure(failed, agentName: agentName)
            case .hello, .challenge, .authenticate, .welcome, .refused, .leaseRequest, .lease, .sourceData,
                .sourceEnd, .heartbeatAck, .resultAccepted, .resultRejected, .revoke, .drain:
                return self.unexpected(message)
            }

        case .closed:
            return .closeWithError(.unexpected("message after the connection was closed"))
        }
    }

    private mutating func helloReceived(_ hello: FarmMessage.Hello) -> Action {
        guard hello.protocolVersion == farmProtocolVersion else {
            self.state = .closed
            return .refuseAndClose(
                FarmProtocolError.versionMismatch(peer: hello.protocolVersion, ours: farmProtocolVersion).description
            )
        }
        guard Self.isValidAgentName(hello.agentName) else {
            self.state = .closed
            return .refuseAndClose(
                "agent name \(hello.agentName.debugDescription) is invalid: use 1 to 64 letters, digits, '.', '_' or '-'"
            )
        }
        self.state = .awaitingProof(nonce: self.nonce, agentName: hello.agentName)
        return .sendChallenge(FarmMessage.Challenge(nonce: self.nonce))
    }

    /// A message the state does not expect closes the connection. A lease in hand is kept so the session can give
    /// the task back at once when the connection closes.
    private mutating func unexpected(_ message: FarmMessage) -> Action {
        let action = Action.closeWithError(.unexpected("\(message.kind) while \(self.stateName)"))
        switch self.state {
        case .working:
            break
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            self.state = .closed
        }
        return action
    }

    // MARK: Outcomes of the session's actions

    package mutating func registered(agentID: Int64) -> Action {
        switch self.state {
        case .registering(let agentName):
            self.state = .idle(agentID: agentID, agentName: agentName)
            return .sendWelcome(agentID: agentID)
        case .awaitingHello, .awaitingProof, .idle, .working, .closed:
            return self.outOfOrder("registration finished")
        }
    }

    /// Another live agent process holds the connection's name: refused, saying so.
    package mutating func nameTaken(coordinator: String?, secondsAgo: Double) -> Action {
        switch self.state {
        case .registering(let agentName):
            self.state = .closed
            let seen = "seen \(Int(secondsAgo.rounded())) s ago" + (coordinator.map { " on coordinator \($0)" } ?? "")
            return .refuseAndClose(
                "an agent named \(agentName) is already connected (\(seen)); give this one another --name, or stop "
                    + "that one first"
            )
        case .awaitingHello, .awaitingProof, .idle, .working, .closed:
            return self.outOfOrder("registration refused")
        }
    }

    /// The store had no task for this connection; `signalGeneration` is the work signal's generation read before
    /// the look, so a notification that came during it is not missed.
    package mutating func noLeaseFound(signalGeneration: UInt64) -> Action {
        switch self.state {
        case .idle(let agentID, let agentName):
            return .findWork(agentID: agentID, agentName: agentName, waitingSince: signalGeneration)
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            return self.outOfOrder("no lease found")
        }
    }

    /// The store leased a task whose source could not be cut (an unreadable source, an unknown codec).
    package mutating func sourceNotPrepared(
        jobID: Int64,
        taskID: Int64,
        token: Int64,
        reason: String,
        retryable: Bool
    ) -> Action {
        switch self.state {
        case .idle(_, let agentName):
            return .failUnpreparedTask(
                jobID: jobID,
                taskID: taskID,
                token: token,
                agentName: agentName,
                message: "preparing the source failed: \(reason)",
                retryable: retryable
            )
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            return self.outOfOrder("a source could not be prepared")
        }
    }

    /// The task whose source could not be cut was failed: the wait for work goes on.
    package mutating func unpreparedTaskFailed() -> Action {
        switch self.state {
        case .idle(let agentID, let agentName):
            return .findWork(agentID: agentID, agentName: agentName)
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            return self.outOfOrder("an unprepared task was failed")
        }
    }

    package mutating func leaseFound(_ found: FoundLease) -> Action {
        switch self.state {
        case .idle(let agentID, let agentName):
            self.state = .working(
                agentID: agentID,
                agentName: agentName,
                assignment: Assignment(lease: found.lease, outputDirectory: found.outputDirectory, isStaging: false)
            )
            return .sendLeaseAndSource(found)
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            return self.outOfOrder("lease granted")
        }
    }

    /// The lease or its source could not be sent (the connection failed, the scratch file could not be read).
    package mutating func sourceNotSent() -> Action {
        switch self.state {
        case .working(let agentID, let agentName, let assignment):
            self.state = .idle(agentID: agentID, agentName: agentName)
            return .releaseLease(taskID: assignment.lease.taskID, token: assignment.lease.token)
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            return self.outOfOrder("a source could not be sent")
        }
    }

    /// The batched renewal of a heartbeat's lease came back: `held` is false when the store no longer has this
    /// token as the task's lease.
    package mutating func leaseRenewed(taskID: Int64, token: Int64, held: Bool) -> Action {
        switch self.state {
        case .working(let agentID, let agentName, let assignment)
        where assignment.lease.taskID == taskID && assignment.lease.token == token:
            guard held else {
                self.state = .idle(agentID: agentID, agentName: agentName)
                return .abandonLease(taskID: taskID, token: token)
            }
            return .acknowledgeHeartbeat(taskID: taskID)
        case .working, .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            return .reportLeaseLost(taskID: taskID)
        }
    }

    /// The lease with `token` was revoked since the last message (its job ended).
    package mutating func leaseRevoked(taskID: Int64, token: Int64) -> Action {
        switch self.state {
        case .working(let agentID, let agentName, let assignment) where assignment.lease.token == token:
            self.state = .idle(agentID: agentID, agentName: agentName)
            return .forgetRevokedLease(taskID: taskID, token: token)
        case .working, .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            // A lease given up before (or never held here): nothing to forget.
            return .wait
        }
    }

    /// The connection ended, for whatever reason.
    package mutating func connectionClosed() -> CloseAction {
        let action: CloseAction
        switch self.state {
        case .working(_, let agentName, let assignment):
            action = .giveBackTask(taskID: assignment.lease.taskID, token: assignment.lease.token, agentName: agentName)
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            action = .cleanUp
        }
        self.state = .closed
        return action
    }

    /// An outcome the session cannot have in this state: a bug, reported as an error; the state stays as it is.
    private func outOfOrder(_ what: String) -> Action {
        .closeWithError(.unexpected("\(what) while \(self.stateName)"))
    }

    // MARK: Reading the state

    package var currentLease: CurrentLease? {
        switch self.state {
        case .working(_, _, let assignment): assignment.lease
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed: nil
        }
    }

    package var isAuthenticated: Bool {
        switch self.state {
        case .idle, .working: true
        case .awaitingHello, .awaitingProof, .registering, .closed: false
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
