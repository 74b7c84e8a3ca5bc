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

    /// Feeds one message, checking proofs with the real cluster secret against the nonce the machine was made with.
    static func receive(_ machine: inout Machine, _ message: FarmMessage) -> Machine.Action {
        machine.received(message) { authenticate, nonce, name in
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
        var machine = Machine(nonce: nonce)
        _ = receive(&machine, .hello(.init(agentName: name)))
        return machine
    }

    /// Task `taskID` of job 7 with `token`, its source cut and its results going to `/out/job-7`.
    static func found(taskID: Int64, token: Int64) -> Machine.FoundLease {
        Machine.FoundLease(
            lease: .init(taskID: taskID, token: token, spec: spec),
            jobID: 7,
            attempts: 1,
            outputDirectory: "/out/job-7",
            sourcePath: "/scratch/farm-source-\(taskID)-\(token).nut"
        )
    }

    /// Where task 9 token 3's upload is staged.
    static let staging = Machine.Staging(lease: .init(taskID: 9, token: 3, spec: spec), outputDirectory: "/out/job-7")

    /// A machine whose agent is registered as agent 42 and holds task 9 with token 3.
    static func working() -> Machine {
        var machine = challenged()
        _ = receive(&machine, authenticate(name: "agent-1"))
        _ = machine.registered(agentID: 42)
        _ = machine.leaseFound(found(taskID: 9, token: 3))
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
        var machine = Machine(nonce: Self.nonce)
        #expect(machine.state == .awaitingHello)
        #expect(!machine.isAuthenticated)

        #expect(
            Self.receive(&machine, .hello(.init(agentName: "agent-1")))
                == .sendChallenge(.init(nonce: Self.nonce))
        )
        #expect(machine.state == .awaitingProof(nonce: Self.nonce, agentName: "agent-1"))
        #expect(!machine.isAuthenticated)

        // The proof is checked against the nonce sent in the challenge, the one the machine was made with.
        #expect(
            Self.receive(&machine, Self.authenticate(name: "agent-1"))
                == .register(agentName: "agent-1", capabilities: Self.capabilities)
        )
        #expect(machine.state == .registering(agentName: "agent-1"))
        #expect(!machine.isAuthenticated)

        #expect(machine.registered(agentID: 42) == .sendWelcome(agentID: 42))
        #expect(machine.state == .idle(agentID: 42, agentName: "agent-1"))
        #expect(machine.isAuthenticated)

        #expect(Self.receive(&machine, .leaseRequest) == .findWork(agentID: 42, agentName: "agent-1"))
        let found = Self.found(taskID: 9, token: 3)
        #expect(machine.leaseFound(found) == .sendLeaseAndSource(found))
        #expect(machine.currentLease == .init(taskID: 9, token: 3, spec: Self.spec))
        #expect(machine.isAuthenticated)

        #expect(
            Self.receive(&machine, .heartbeat(.init(taskID: 9, token: 3, progress: 0.5)))
                == .extendLease(taskID: 9, token: 3)
        )
        let header = FarmMessage.SegmentData(taskID: 9, token: 3, path: "240p/segment_00002.m4s", offset: 0)
        #expect(
            Self.receive(&machine, .segmentData(header, .init(bytes: [1, 2, 3])))
                == .storeSegmentData(header, .init(bytes: [1, 2, 3]), staging: Self.staging, isFirstPiece: true)
        )

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
        #expect(machine.leaseRenewed(taskID: 9, token: 3, held: false) == .abandonLease(taskID: 9, token: 3))
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
        _ = machine.leaseRenewed(taskID: 9, token: 3, held: false)
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

    @Test("a name another live agent process holds is refused, saying where it was seen")
    func nameTaken() throws {
        var machine = Self.challenged()
        #expect(
            Self.receive(&machine, Self.authenticate(name: "agent-1"))
                == .register(agentName: "agent-1", capabilities: Self.capabilities)
        )
        let action = machine.nameTaken(coordinator: "coord-b", secondsAgo: 2.4)
        guard case .refuseAndClose(let reason) = action else {
            Issue.record("expected refuseAndClose, got \(action)")
            return
        }
        #expect(reason.contains("agent-1 is already connected (seen 2 s ago on coordinator coord-b)"), "\(reason)")
        #expect(reason.contains("another --name"), "\(reason)")
        #expect(machine.state == .closed)
        #expect(!machine.isAuthenticated)
    }

    @Test("another protocol version is refused, naming both versions")
    func wrongProtocolVersion() throws {
        var machine = Machine(nonce: Self.nonce)
        let peer = farmProtocolVersion + 1
        let action = Self.receive(&machine, .hello(.init(protocolVersion: peer, agentName: "agent-1")))
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
        var machine = Machine(nonce: Self.nonce)
        let action = Self.receive(&machine, .hello(.init(agentName: name)))
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
        var machine = Machine(nonce: Self.nonce)
        #expect(
            Self.receive(&machine, .hello(.init(agentName: name)))
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

        var otherNonce = Machine(nonce: "a-different-nonce")
        _ = Self.receive(&otherNonce, .hello(.init(agentName: "agent-1")))
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
        for var machine in [Machine(nonce: Self.nonce), Self.challenged()] {
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
        var fresh = Machine(nonce: Self.nonce)
        guard case .closeWithError = fresh.registered(agentID: 1) else {
            Issue.record("registered before authentication was accepted")
            return
        }
        #expect(fresh.state == .awaitingHello)

        var challenged = Self.challenged()
        guard case .closeWithError = challenged.leaseFound(Self.found(taskID: 1, token: 1)) else {
            Issue.record("a lease before registration was accepted")
            return
        }
        #expect(challenged.currentLease == nil)

        var working = Self.working()
        guard case .closeWithError = working.leaseFound(Self.found(taskID: 10, token: 1)) else {
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

/// Every message and every event in every state, each with the action and the state it must lead to.
extension AgentConnectionStateMachineTests {
    /// One machine in each state, as a connection gets there.
    enum StateFixture: String, CaseIterable, Sendable {
        case awaitingHello, awaitingProof, registering, idle, working, closed

        var machine: Machine {
            switch self {
            case .awaitingHello:
                return Machine(nonce: AgentConnectionStateMachineTests.nonce)
            case .awaitingProof:
                return AgentConnectionStateMachineTests.challenged()
            case .registering:
                var machine = AgentConnectionStateMachineTests.challenged()
                _ = AgentConnectionStateMachineTests.receive(
                    &machine,
                    AgentConnectionStateMachineTests.authenticate(name: "agent-1")
                )
                return machine
            case .idle:
                var machine = StateFixture.registering.machine
                _ = machine.registered(agentID: 42)
                return machine
            case .working:
                return AgentConnectionStateMachineTests.working()
            case .closed:
                var machine = StateFixture.idle.machine
                _ = machine.connectionClosed()
                return machine
            }
        }

        /// How the machine names the state in its errors.
        var name: String {
            switch self {
            case .awaitingHello: "awaiting hello"
            case .awaitingProof: "awaiting authentication"
            case .registering: "registering"
            case .idle: "idle"
            case .working: "working on a task"
            case .closed: "closed"
            }
        }
    }

    static let idleState = Machine.State.idle(agentID: 42, agentName: "agent-1")
    static let segmentHeader = FarmMessage.SegmentData(taskID: 9, token: 3, path: "240p/segment_00002.m4s", offset: 0)
    static let failed = FarmMessage.TaskFailed(taskID: 9, token: 3, message: "decoder error", retryable: false)

    /// Every kind of message, each as the state that expects it would (for the working state's lease: task 9, token 3).
    static let messages: [FarmMessage] = [
        .hello(.init(agentName: "agent-1")),
        .challenge(.init(nonce: nonce)),
        authenticate(name: "agent-1"),
        .welcome(.init(agentID: 1, heartbeatIntervalSeconds: 5)),
        .refused(.init(reason: "no")),
        .leaseRequest,
        .lease(.init(taskID: 9, token: 3, leaseSeconds: 30, spec: spec, sourceBytes: 10)),
        .sourceData(.init(bytes: [1])),
        .sourceEnd(.init(taskID: 9, sha256: String(repeating: "0", count: 64))),
        .heartbeat(.init(taskID: 9, token: 3, progress: 0.5)),
        .heartbeatAck(.init(taskID: 9, leaseHeld: true)),
        .segmentData(segmentHeader, .init(bytes: [1, 2, 3])),
        .taskComplete(complete(taskID: 9, token: 3)),
        .taskFailed(failed),
        .resultAccepted(.init(taskID: 9, token: 3)),
        .resultRejected(.init(taskID: 9, token: 3, reason: "no")),
        .revoke(.init(taskID: 9, reason: "cancelled")),
        .drain,
    ]

    @Test("the message list holds every kind of message once")
    func messageListIsComplete() {
        let kinds = Self.messages.map(\.kind.rawValue)
        let allKinds = (0...UInt8.max).filter { FarmMessage.Kind(rawValue: $0) != nil }
        #expect(kinds == allKinds)
    }

    /// What each state does with each message: the ones a state expects are listed; any other closes the connection
    /// naming the message and the state, and the machine is closed, except that a lease in hand is kept.
    static func expected(_ fixture: StateFixture, _ message: FarmMessage) -> (Machine.Action, Machine.State) {
        let before = fixture.machine.state
        switch (fixture, message.kind) {
        case (.awaitingHello, .hello):
            return (.sendChallenge(.init(nonce: nonce)), .awaitingProof(nonce: nonce, agentName: "agent-1"))
        case (.awaitingProof, .authenticate):
            return (.register(agentName: "agent-1", capabilities: capabilities), .registering(agentName: "agent-1"))
        case (.idle, .leaseRequest):
            return (.findWork(agentID: 42, agentName: "agent-1"), before)
        case (.idle, .heartbeat):
            return (.reportLeaseLost(taskID: 9), before)
        case (.idle, .segmentData):
            return (.discardStaleData(taskID: 9, token: 3), before)
        case (.idle, .taskComplete), (.idle, .taskFailed):
            return (.rejectStale(taskID: 9, token: 3, reason: "the lease was given up"), before)
        case (.working, .heartbeat):
            return (.extendLease(taskID: 9, token: 3), before)
        case (.working, .segmentData):
            let staging = Machine.Assignment(lease: staging.lease, outputDirectory: "/out/job-7", isStaging: true)
            return (
                .storeSegmentData(segmentHeader, .init(bytes: [1, 2, 3]), staging: Self.staging, isFirstPiece: true),
                .working(agentID: 42, agentName: "agent-1", assignment: staging)
            )
        case (.working, .taskComplete):
            // No segment data came for the lease: the result cannot be used.
            return (
                .rejectAndFail(
                    complete(taskID: 9, token: 3),
                    agentName: "agent-1",
                    reason: "no segment data was received for this result"
                ),
                idleState
            )
        case (.working, .taskFailed):
            return (.recordFailure(failed, agentName: "agent-1"), idleState)
        case (.closed, _):
            return (.closeWithError(.unexpected("message after the connection was closed")), .closed)
        case (.working, _):
            return (.closeWithError(.unexpected("\(message.kind) while \(fixture.name)")), before)
        case (.awaitingHello, _), (.awaitingProof, _), (.registering, _), (.idle, _):
            return (.closeWithError(.unexpected("\(message.kind) while \(fixture.name)")), .closed)
        }
    }

    @Test("every message in every state", arguments: StateFixture.allCases, messages)
    func everyMessageInEveryState(fixture: StateFixture, message: FarmMessage) {
        var machine = fixture.machine
        let (action, state) = Self.expected(fixture, message)
        #expect(Self.receive(&machine, message) == action)
        #expect(machine.state == state)
    }

    /// The error every event that cannot happen in a state gives, leaving the state as it was.
    static func outOfOrder(_ what: String, _ fixture: StateFixture) -> Machine.Action {
        .closeWithError(.unexpected("\(what) while \(fixture.name)"))
    }

    @Test("registration finishing, in every state", arguments: StateFixture.allCases)
    func registeredInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let action = machine.registered(agentID: 42)
        switch fixture {
        case .registering:
            #expect(action == .sendWelcome(agentID: 42))
            #expect(machine.state == Self.idleState)
        case .awaitingHello, .awaitingProof, .idle, .working, .closed:
            #expect(action == Self.outOfOrder("registration finished", fixture))
            #expect(machine.state == fixture.machine.state)
        }
    }

    @Test("no lease found, in every state", arguments: StateFixture.allCases)
    func noLeaseFoundInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let action = machine.noLeaseFound(signalGeneration: 5)
        switch fixture {
        case .idle:
            // Wait for a notification after the look began, then look again.
            #expect(action == .findWork(agentID: 42, agentName: "agent-1", waitingSince: 5))
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            #expect(action == Self.outOfOrder("no lease found", fixture))
        }
        #expect(machine.state == fixture.machine.state)
    }

    @Test("a source that could not be prepared, and its task failed, in every state", arguments: StateFixture.allCases)
    func sourceNotPreparedInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let action = machine.sourceNotPrepared(jobID: 5, taskID: 9, token: 3, reason: "unknown codec", retryable: false)
        let then = machine.unpreparedTaskFailed()
        switch fixture {
        case .idle:
            #expect(
                action
                    == .failUnpreparedTask(
                        jobID: 5,
                        taskID: 9,
                        token: 3,
                        agentName: "agent-1",
                        message: "preparing the source failed: unknown codec",
                        retryable: false
                    )
            )
            // The connection goes on looking for work, at once.
            #expect(then == .findWork(agentID: 42, agentName: "agent-1"))
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            #expect(action == Self.outOfOrder("a source could not be prepared", fixture))
            #expect(then == Self.outOfOrder("an unprepared task was failed", fixture))
        }
        #expect(machine.state == fixture.machine.state)
    }

    @Test("a lease found, in every state", arguments: StateFixture.allCases)
    func leaseFoundInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let found = Self.found(taskID: 10, token: 4)
        let action = machine.leaseFound(found)
        switch fixture {
        case .idle:
            #expect(action == .sendLeaseAndSource(found))
            #expect(
                machine.state
                    == .working(
                        agentID: 42,
                        agentName: "agent-1",
                        assignment: .init(lease: found.lease, outputDirectory: "/out/job-7", isStaging: false)
                    )
            )
        case .awaitingHello, .awaitingProof, .registering, .working, .closed:
            #expect(action == Self.outOfOrder("lease granted", fixture))
            #expect(machine.state == fixture.machine.state)
        }
    }

    @Test("a source that could not be sent, in every state", arguments: StateFixture.allCases)
    func sourceNotSentInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let action = machine.sourceNotSent()
        switch fixture {
        case .working:
            #expect(action == .releaseLease(taskID: 9, token: 3))
            #expect(machine.state == Self.idleState)
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            #expect(action == Self.outOfOrder("a source could not be sent", fixture))
            #expect(machine.state == fixture.machine.state)
        }
    }

    @Test("a heartbeat's renewal held, refused, or for another lease, in every state", arguments: StateFixture.allCases)
    func leaseRenewedInEveryState(fixture: StateFixture) {
        var held = fixture.machine
        var refused = fixture.machine
        var other = fixture.machine
        let heldAction = held.leaseRenewed(taskID: 9, token: 3, held: true)
        let refusedAction = refused.leaseRenewed(taskID: 9, token: 3, held: false)
        // A renewal for another token changes nothing, whatever the store said.
        #expect(other.leaseRenewed(taskID: 9, token: 2, held: true) == .reportLeaseLost(taskID: 9))
        #expect(other.state == fixture.machine.state)
        switch fixture {
        case .working:
            #expect(heldAction == .acknowledgeHeartbeat(taskID: 9))
            #expect(held.state == fixture.machine.state)
            #expect(refusedAction == .abandonLease(taskID: 9, token: 3))
            #expect(refused.state == Self.idleState)
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            #expect(heldAction == .reportLeaseLost(taskID: 9))
            #expect(refusedAction == .reportLeaseLost(taskID: 9))
            #expect(held.state == fixture.machine.state)
            #expect(refused.state == fixture.machine.state)
        }
    }

    @Test("a revoke of the lease in hand or of another one, in every state", arguments: StateFixture.allCases)
    func leaseRevokedInEveryState(fixture: StateFixture) {
        var other = fixture.machine
        #expect(other.leaseRevoked(taskID: 9, token: 2) == .wait, "a lease given up before: nothing to forget")
        #expect(other.state == fixture.machine.state)
        var machine = fixture.machine
        let action = machine.leaseRevoked(taskID: 9, token: 3)
        switch fixture {
        case .working:
            #expect(action == .forgetRevokedLease(taskID: 9, token: 3))
            #expect(machine.state == Self.idleState)
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            #expect(action == .wait)
            #expect(machine.state == fixture.machine.state)
        }
    }

    @Test("the connection closing, in every state", arguments: StateFixture.allCases)
    func connectionClosedInEveryState(fixture: StateFixture) {
        var machine = fixture.machine
        let action = machine.connectionClosed()
        switch fixture {
        case .working:
            // The agent is gone mid-task: its task goes back at once.
            #expect(action == .giveBackTask(taskID: 9, token: 3, agentName: "agent-1"))
        case .awaitingHello, .awaitingProof, .registering, .idle, .closed:
            #expect(action == .cleanUp)
        }
        #expect(machine.state == .closed)
    }

    @Test("later pieces of an upload add to the staged result, and the result is then committed")
    func uploadThenCommit() {
        var machine = Self.working()
        let first = FarmMessage.segmentData(Self.segmentHeader, .init(bytes: [1]))
        let second = FarmMessage.segmentData(
            .init(taskID: 9, token: 3, path: "240p/segment_00002.m4s", offset: 1),
            .init(bytes: [2])
        )
        guard case .storeSegmentData(_, _, _, isFirstPiece: true) = Self.receive(&machine, first) else {
            Issue.record("the first piece did not start the staged result")
            return
        }
        guard case .storeSegmentData(_, _, let staging, isFirstPiece: false) = Self.receive(&machine, second) else {
            Issue.record("a later piece started the staged result again")
            return
        }
        #expect(staging == Self.staging)
        let complete = Self.complete(taskID: 9, token: 3)
        #expect(Self.receive(&machine, .taskComplete(complete)) == .commit(complete, agentName: "agent-1"))
        #expect(machine.state == Self.idleState)
    }
}
