import FarmProtocol
import Testing

@testable import FarmCoordinator

@Suite("AgentConnectionStateMachine")
struct AgentConnectionStateMachineTests {
    typealias Machine = AgentConnectionStateMachine

    static let secret = ClusterSecret("correct horse battery staple")
    static let nonce = "6e6f6e63652d666f722d746869732d636f6e6e656374696f6e"
    static let capabilities = FarmMessage.Capabilities(encoders: ["libx264"], vaapiDevice: nil, slots: 2)

    static let spec = TaskSpec(
        kind: .video,
        jobID: 7,
        chunkIndex: 1,
        chunkCount: 3,
        timeBase: Rational(1, 12800),
        frameRate: Rational(25, 1),
        originPTS: 0,
        startPTS: 102_400,
        endPTS: 204_800,
        segmentStarts: [102_400, 153_600],
        firstSegmentIndex: 2,
        frameCount: 200,
        renditions: [RenditionSpec(name: "240p", width: 426, height: 240, maxBitrate: 600_000)],
        settings: .default
    )

    /// Feeds one message, checking proofs with the real cluster secret. Each call passes a fresh nonce, as the
    /// session does: only the one chosen at `hello` may count.
    static func receive(
        _ machine: inout Machine,
        _ message: FarmMessage,
        nonce: String = "unused-later-nonce"
    ) -> Machine.Action {
        machine.received(message, nonce: nonce) { authenticate, nonce, name in
            secret.verify(proof: authenticate.proof, nonce: nonce, agentName: name)
        }
    }

    static func authenticate(name: String, secret: ClusterSecret = Self.secret, slots: Int = 2) -> FarmMessage {
        var capabilities = Self.capabilities
        capabilities.slots = slots
        return .authenticate(.init(proof: secret.proof(nonce: nonce, agentName: name), capabilities: capabilities))
    }

    /// A machine that has said hello as `name` and received the challenge.
    static func challenged(name: String = "agent-1") -> Machine {
        var machine = Machine()
        _ = receive(&machine, .hello(.init(agentName: name)), nonce: nonce)
        return machine
    }

    /// A machine whose agent is registered as agent 42 and holds task 9 with token 3.
    static func working() -> Machine {
        var machine = challenged()
        _ = receive(&machine, authenticate(name: "agent-1"))
        _ = machine.registered(agentID: 42)
        _ = machine.leased(taskID: 9, token: 3, spec: spec)
        return machine
    }

    static func complete(taskID: Int64, token: Int64) -> FarmMessage.TaskComplete {
        let output = OutputFile(
            rendition: "240p",
            role: .segment,
            segmentIndex: 2,
            path: "240p/segment_00002.m4s",
            bytes: 1234,
            sha256: String(repeating: "ab", count: 32),
            startPTS: 102_400,
            duration: 51_200,
            frames: 100,
            timeBase: Rational(1, 12800)
        )
        return FarmMessage.TaskComplete(taskID: taskID, token: token, outputs: [output])
    }

    @Test("happy path: hello, challenge, proof, registration, welcome, lease, heartbeat, data, completion")
    func happyPath() {
        var machine = Machine()
        #expect(machine.state == .awaitingHello)
        #expect(!machine.isAuthenticated)

        #expect(
            Self.receive(&machine, .hello(.init(agentName: "agent-1")), nonce: Self.nonce)
                == .sendChallenge(.init(nonce: Self.nonce))
        )
        #expect(machine.state == .awaitingProof(nonce: Self.nonce, agentName: "agent-1"))
        #expect(!machine.isAuthenticated)

        // The proof is checked against the nonce sent in the challenge, not the one offered with this message.
        #expect(
            Self.receive(&machine, Self.authenticate(name: "agent-1"), nonce: "another-nonce")
                == .register(agentName: "agent-1", capabilities: Self.capabilities)
        )
        #expect(machine.state == .registering(agentName: "agent-1"))
        #expect(!machine.isAuthenticated)

        #expect(machine.registered(agentID: 42) == .sendWelcome(agentID: 42))
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))
        #expect(machine.isAuthenticated)

        #expect(Self.receive(&machine, .leaseRequest) == .findWork(agentID: 42, agentName: "agent-1"))
        #expect(machine.leased(taskID: 9, token: 3, spec: Self.spec) == .sendLeaseAndSource)
        #expect(machine.currentLease == .init(taskID: 9, token: 3, spec: Self.spec))
        #expect(machine.isAuthenticated)

        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 9, token: 3, progress: 0.5)))
                == .extendLease(taskID: 9, token: 3)
        )
        let header = FarmMessage.SegmentData(taskID: 9, token: 3, path: "240p/segment_00002.m4s", offset: 0)
        #expect(Self.receive(&machine, .segmentData(header, .init(bytes: [1, 2, 3]))) == .storeSegmentData)

        let complete = Self.complete(taskID: 9, token: 3)
        #expect(Self.receive(&machine, .taskComplete(complete)) == .commit(complete, agentName: "agent-1"))
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))
        #expect(machine.currentLease == nil)

        // The connection goes on to the next task.
        #expect(Self.receive(&machine, .leaseRequest) == .findWork(agentID: 42, agentName: "agent-1"))
    }

    @Test("a heartbeat for another lease is answered 'lease lost' and the current lease stays")
    func heartbeatForOtherLease() {
        var machine = Self.working()
        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 9, token: 2, progress: 0.1))) == .reportLeaseLost(taskID: 9)
        )
        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 8, token: 3, progress: 0.1))) == .reportLeaseLost(taskID: 8)
        )
        #expect(machine.currentLease?.token == 3)
        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 9, token: 3, progress: 0.2)))
                == .extendLease(taskID: 9, token: 3)
        )
    }

    @Test("a heartbeat while idle is answered 'lease lost'")
    func heartbeatWhileIdle() {
        var machine = Self.working()
        machine.leaseEnded()
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))
        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 9, token: 3, progress: 0.9))) == .reportLeaseLost(taskID: 9)
        )
    }

    @Test("segment data for another lease closes the connection with an error naming both leases")
    func segmentDataForOtherLease() throws {
        var machine = Self.working()
        let header = FarmMessage.SegmentData(taskID: 9, token: 2, path: "240p/segment_00002.m4s", offset: 0)
        let action = Self.receive(&machine, .segmentData(header, .init(bytes: [0xFF])))
        guard case .closeWithError(let error) = action else {
            Issue.record("expected closeWithError, got \(action)")
            return
        }
        #expect(error.description.contains("task 9 token 2"), "\(error)")
        #expect(error.description.contains("lease is task 9 token 3"), "\(error)")
    }

    @Test("a completion for a stale token while working is rejected and the current lease kept")
    func staleCompletionWhileWorking() {
        var machine = Self.working()
        let stale = Self.complete(taskID: 9, token: 2)
        #expect(
            Self.receive(&machine, .taskComplete(stale))
                == .rejectStale(taskID: 9, token: 2, reason: "not this connection's lease")
        )
        #expect(machine.currentLease == .init(taskID: 9, token: 3, spec: Self.spec))
    }

    @Test("a completion after the lease was given up is rejected as stale")
    func completionWhileIdle() {
        var machine = Self.working()
        machine.leaseEnded()
        #expect(
            Self.receive(&machine, .taskComplete(Self.complete(taskID: 9, token: 3)))
                == .rejectStale(taskID: 9, token: 3, reason: "the lease was given up")
        )
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))
    }

    @Test("a failure report for the current lease is recorded and the connection goes idle")
    func taskFailed() {
        var machine = Self.working()
        let failed = FarmMessage.TaskFailed(taskID: 9, token: 3, message: "decoder error", retryable: false)
        #expect(Self.receive(&machine, .taskFailed(failed)) == .recordFailure(failed, agentName: "agent-1"))
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))

        let again = FarmMessage.TaskFailed(taskID: 9, token: 3, message: "decoder error", retryable: false)
        #expect(
            Self.receive(&machine, .taskFailed(again))
                == .rejectStale(taskID: 9, token: 3, reason: "the lease was given up")
        )
    }

    @Test("a failure report for a stale token is rejected")
    func staleTaskFailed() {
        var machine = Self.working()
        let failed = FarmMessage.TaskFailed(taskID: 9, token: 1, message: "x", retryable: true)
        #expect(
            Self.receive(&machine, .taskFailed(failed))
                == .rejectStale(taskID: 9, token: 1, reason: "not this connection's lease")
        )
        #expect(machine.currentLease?.token == 3)
    }

    @Test("another protocol version is refused, naming both versions")
    func wrongProtocolVersion() throws {
        var machine = Machine()
        let peer = farmProtocolVersion + 1
        let action = Self.receive(
            &machine,
            .hello(.init(protocolVersion: peer, agentName: "agent-1")),
            nonce: Self.nonce
        )
        guard case .refuseAndClose(let reason) = action else {
            Issue.record("expected refuseAndClose, got \(action)")
            return
        }
        #expect(reason.contains("version \(peer)"), "\(reason)")
        #expect(reason.contains("speaks \(farmProtocolVersion)"), "\(reason)")
        #expect(machine.state == .closed)
    }

    @Test(
        "an invalid agent name is refused",
        arguments: ["agent\n1", "", String(repeating: "a", count: 65), "agént", "agent 1", "agent/1", "ａｇｅｎｔ"]
    )
    func invalidAgentName(name: String) throws {
        var machine = Machine()
        let action = Self.receive(&machine, .hello(.init(agentName: name)), nonce: Self.nonce)
        guard case .refuseAndClose(let reason) = action else {
            Issue.record("expected refuseAndClose for \(name.debugDescription), got \(action)")
            return
        }
        #expect(reason.contains("agent name"), "\(reason)")
        #expect(reason.contains("1 to 64"), "\(reason)")
        #expect(machine.state == .closed)
    }

    @Test("valid agent names", arguments: ["a", "agent-1", "gpu_box.lan", String(repeating: "z", count: 64), "A9"])
    func validAgentName(name: String) {
        var machine = Machine()
        #expect(
            Self.receive(&machine, .hello(.init(agentName: name)), nonce: Self.nonce)
                == .sendChallenge(.init(nonce: Self.nonce))
        )
        #expect(machine.state == .awaitingProof(nonce: Self.nonce, agentName: name))
    }

    @Test("a proof made with another secret is refused as an authentication failure")
    func wrongSecret() throws {
        var machine = Self.challenged()
        let action = Self.receive(&machine, Self.authenticate(name: "agent-1", secret: ClusterSecret("wrong")))
        guard case .refuseAndClose(let reason) = action else {
            Issue.record("expected refuseAndClose, got \(action)")
            return
        }
        #expect(reason.contains("authentication failed"), "\(reason)")
        #expect(machine.state == .closed)
        #expect(!machine.isAuthenticated)
    }

    @Test("a proof for another agent name or another nonce is refused")
    func proofBoundToNameAndNonce() {
        var otherName = Self.challenged(name: "agent-1")
        #expect(!Self.isRegister(Self.receive(&otherName, Self.authenticate(name: "agent-2"))))
        #expect(otherName.state == .closed)

        var otherNonce = Machine()
        _ = Self.receive(&otherNonce, .hello(.init(agentName: "agent-1")), nonce: "a-different-nonce")
        #expect(!Self.isRegister(Self.receive(&otherNonce, Self.authenticate(name: "agent-1"))))
        #expect(otherNonce.state == .closed)
    }

    static func isRegister(_ action: Machine.Action) -> Bool {
        if case .register = action { return true }
        return false
    }

    @Test("an agent announcing fewer than one slot is refused", arguments: [0, -1])
    func noSlots(slots: Int) throws {
        var machine = Self.challenged()
        let action = Self.receive(&machine, Self.authenticate(name: "agent-1", slots: slots))
        guard case .refuseAndClose(let reason) = action else {
            Issue.record("expected refuseAndClose, got \(action)")
            return
        }
        #expect(reason.contains("\(slots) slots"), "\(reason)")
        #expect(machine.state == .closed)
    }

    @Test("a lease request before authentication closes the connection")
    func leaseRequestBeforeAuthentication() throws {
        for var machine in [Machine(), Self.challenged()] {
            let action = Self.receive(&machine, .leaseRequest)
            guard case .closeWithError(let error) = action else {
                Issue.record("expected closeWithError, got \(action)")
                continue
            }
            #expect(error.description.contains("unexpected message"), "\(error)")
            #expect(machine.state == .closed)
            #expect(!machine.isAuthenticated)
        }
    }

    @Test("work messages before registration finishes close the connection")
    func workWhileRegistering() {
        var machine = Self.challenged()
        _ = Self.receive(&machine, Self.authenticate(name: "agent-1"))
        #expect(machine.state == .registering(agentName: "agent-1"))
        guard case .closeWithError = Self.receive(&machine, .heartbeat(.init(taskID: 1, token: 1, progress: 0))) else {
            Issue.record("a heartbeat while registering was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test("any message after the connection closed is an error, and the machine stays closed")
    func afterClose() {
        var machine = Self.challenged()
        _ = Self.receive(&machine, Self.authenticate(name: "agent-1", secret: ClusterSecret("wrong")))
        #expect(machine.state == .closed)
        guard case .closeWithError = Self.receive(&machine, .hello(.init(agentName: "agent-1"))) else {
            Issue.record("a hello after close was accepted")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test("registration and leases granted in the wrong state are errors and change nothing")
    func outOfOrderCallbacks() {
        var fresh = Machine()
        guard case .closeWithError = fresh.registered(agentID: 1) else {
            Issue.record("registered before authentication was accepted")
            return
        }
        #expect(fresh.state == .awaitingHello)

        var challenged = Self.challenged()
        guard case .closeWithError = challenged.leased(taskID: 1, token: 1, spec: Self.spec) else {
            Issue.record("a lease before registration was accepted")
            return
        }
        #expect(challenged.currentLease == nil)

        var working = Self.working()
        guard case .closeWithError = working.leased(taskID: 10, token: 1, spec: Self.spec) else {
            Issue.record("a second lease on a working connection was accepted")
            return
        }
        #expect(working.currentLease?.taskID == 9)
    }

    /// `AgentSession.connectionEnded` gives a task back at once when the connection ends while `working`, reading the
    /// lease from the machine, so a protocol error while working must not make the machine forget the lease.
    @Test("a protocol error while working keeps the lease known, so the session can give the task back at once")
    func protocolErrorWhileWorkingKeepsLease() {
        var machine = Self.working()
        guard case .closeWithError = Self.receive(&machine, .leaseRequest) else {
            Issue.record("a lease request while working was accepted")
            return
        }
        #expect(machine.currentLease == .init(taskID: 9, token: 3, spec: Self.spec))
    }
}
