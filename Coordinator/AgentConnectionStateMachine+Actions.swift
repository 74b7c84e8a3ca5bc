import FarmProtocol
import NIOCore

/// What `AgentConnectionStateMachine` knows (its states and the lease data they carry) and what it tells the
/// session to do.
extension AgentConnectionStateMachine {
    package struct CurrentLease: Equatable {
        package var taskID: Int64
        package var token: Int64
        package var spec: TaskSpec
    }

    /// A task the store leased to this connection, its source cut into a scratch file and ready to send.
    package struct FoundLease: Equatable {
        package var lease: CurrentLease
        package var jobID: Int64
        package var attempts: Int
        /// The job's output folder: the result is staged under it and published into it.
        package var outputDirectory: String
        /// The scratch file holding the source the agent is sent.
        package var sourcePath: String
    }

    /// The lease a working connection holds, with what its result needs.
    package struct Assignment: Equatable {
        package var lease: CurrentLease
        /// The job's output folder: the result is staged under it and published into it.
        package var outputDirectory: String
        /// Whether segment data of this lease arrived: the session then holds its staged result.
        package var isStaging: Bool
    }

    /// Where a lease's uploaded files are staged.
    ///
    /// The staged files are I/O (a `StagedResult` writes, hashes and renames files), so they are not part of this
    /// pure machine: it keeps only whether staging began (`Assignment.isStaging`), and the session holds the one
    /// `StagedResult` for the lease named here, made when the machine says the first piece arrived and dropped when
    /// the machine ends the lease.
    package struct Staging: Equatable {
        package var lease: CurrentLease
        package var outputDirectory: String
    }

    package enum State: Equatable {
        case awaitingHello
        case awaitingProof(nonce: String, agentName: String)
        case registering(agentName: String)
        case idle(agentID: Int64, agentName: String)
        case working(agentID: Int64, agentName: String, assignment: Assignment)
        case closed
    }

    package enum Action: Equatable {
        /// Nothing to do: read the agent's next message.
        case wait
        case sendChallenge(FarmMessage.Challenge)
        case register(agentName: String, capabilities: FarmMessage.Capabilities)
        /// The handshake is over: its deadline no longer applies.
        case sendWelcome(agentID: Int64)
        /// Lease the best queued task and cut its source. With `waitingSince` (the work signal's generation when the
        /// last look found nothing), first wait for a work notification after it, or the poll interval.
        case findWork(agentID: Int64, agentName: String, waitingSince: UInt64? = nil)
        /// The source of a leased task could not be cut: fail the task with the reason; then look for work again.
        case failUnpreparedTask(
            jobID: Int64,
            taskID: Int64,
            token: Int64,
            agentName: String,
            message: String,
            retryable: Bool
        )
        /// Hold the lease (so a revoke reaches it), then send the lease, the source and its SHA-256.
        case sendLeaseAndSource(FoundLease)
        /// The source could not be sent: give the lease back to the queue and drop its hold.
        case releaseLease(taskID: Int64, token: Int64)
        case extendLease(taskID: Int64, token: Int64)
        /// The renewal held: tell the agent.
        case acknowledgeHeartbeat(taskID: Int64)
        /// Tell the agent this lease is not its own (any more): it must stop working on it.
        case reportLeaseLost(taskID: Int64)
        /// The store refused the renewal: drop the lease's staged files and its hold, and tell the agent to stop.
        case abandonLease(taskID: Int64, token: Int64)
        /// The lease's job ended and the lease was revoked: drop its staged files; what the agent sends for it now is
        /// refused.
        case forgetRevokedLease(taskID: Int64, token: Int64)
        /// Append a piece of an output file to the lease's staged result, made first when `isFirstPiece`.
        case storeSegmentData(FarmMessage.SegmentData, ByteBuffer, staging: Staging, isFirstPiece: Bool)
        case discardStaleData(taskID: Int64, token: Int64)
        /// Verify the staged result and commit it on the lease's token; then drop the lease's hold.
        case commit(FarmMessage.TaskComplete, agentName: String)
        /// A result for the lease that cannot be used: refuse it and count a failed, retryable attempt; then drop the
        /// lease's hold.
        case rejectAndFail(FarmMessage.TaskComplete, agentName: String, reason: String)
        /// Drop the lease's staged files, record the agent's failure; then drop the lease's hold.
        case recordFailure(FarmMessage.TaskFailed, agentName: String)
        /// A result or failure for a lease this connection no longer holds.
        case rejectStale(taskID: Int64, token: Int64, reason: String)
        case refuseAndClose(String)
        case closeWithError(FarmProtocolError)
    }

    /// What the session does once the connection has closed.
    package enum CloseAction: Equatable {
        /// Drop the lease's hold and staged files, if any.
        case cleanUp
        /// The agent is gone mid-task: clean up, and give the task back now rather than when its lease runs out.
        case giveBackTask(taskID: Int64, token: Int64, agentName: String)
    }
}
