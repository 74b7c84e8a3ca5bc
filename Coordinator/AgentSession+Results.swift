import FarmProtocol
import NIOCore
import NIOPosix

/// An agent's upload, result and failure reports, as the machine says to handle them.
extension AgentSession {
    /// Appends a piece of an output file to the staged result of the lease `staging` names, made first for the
    /// lease's first piece.
    func storeSegmentData(
        _ header: FarmMessage.SegmentData,
        body: ByteBuffer,
        staging: AgentConnectionStateMachine.Staging,
        isFirstPiece: Bool
    ) throws {
        if isFirstPiece {
            self.dropStaged()
            self.staged = try StagedResult(lease: staging.lease, outputDirectory: staging.outputDirectory)
        }
        guard let staged = self.staged, staged.taskID == staging.lease.taskID, staged.token == staging.lease.token
        else {
            // The machine said an earlier piece of this lease was the first, so its staged result must be here.
            throw FarmProtocolError.unexpected("segment data for task \(header.taskID) has no staged result")
        }
        try staged.append(header: header, body: body)
    }

    func commit(
        _ complete: FarmMessage.TaskComplete,
        agentName: String,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        let staged = self.staged
        self.staged = nil
        // The machine commits only a lease it saw data for (else it rejects the result), so this holds.
        guard let staged, staged.taskID == complete.taskID, staged.token == complete.token else {
            try await self.rejectAndFail(
                complete,
                agentName: agentName,
                reason: "no segment data was received for this result",
                outbound: outbound
            )
            return
        }
        do {
            try await NIOThreadPool.singleton.runIfActive { try staged.verify(complete.outputs) }
        } catch {
            staged.discard()
            try await self.rejectAndFail(complete, agentName: agentName, reason: "\(error)", outbound: outbound)
            return
        }
        let verdict = try await self.context.store.complete(
            taskID: complete.taskID,
            token: complete.token,
            agentName: agentName,
            coordinator: self.context.configuration.name,
            outputs: complete.outputs
        ) {
            try staged.publish(into: staged.outputDirectory)
        }
        staged.discard()
        switch verdict {
        case .accepted(let remaining):
            self.logger.info("accepted result", metadata: ["task": "\(complete.taskID)", "remaining": "\(remaining)"])
            try await outbound.write(.resultAccepted(.init(taskID: complete.taskID, token: complete.token)))
            if remaining == 0 {
                // The job is ready to stitch: the stitcher's news, not the waiting sessions'.
                self.context.signals.notify(.services)
            } else {
                self.context.progress.jobChanged(staged.spec.jobID)
            }
        case .alreadyAccepted:
            try await outbound.write(.resultAccepted(.init(taskID: complete.taskID, token: complete.token)))
        case .refused(let reason):
            try await self.rejectAndFail(complete, agentName: agentName, reason: reason, outbound: outbound)
        case .stale(let reason):
            self.logger.warning(
                "refused a stale result: the database holds another lease for the task",
                metadata: ["task": "\(complete.taskID)", "token": "\(complete.token)", "reason": "\(reason)"]
            )
            try await outbound.write(
                .resultRejected(.init(taskID: complete.taskID, token: complete.token, reason: "stale lease: \(reason)"))
            )
        }
    }

    /// A result that cannot be used (missing or corrupt files): refuse it and count a failed, retryable attempt.
    func rejectAndFail(
        _ complete: FarmMessage.TaskComplete,
        agentName: String,
        reason: String,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        self.logger.warning(
            "refused an invalid result",
            metadata: ["task": "\(complete.taskID)", "reason": "\(reason)"]
        )
        _ = try await self.context.store.fail(
            taskID: complete.taskID,
            token: complete.token,
            agentName: agentName,
            message: "invalid result: \(reason)",
            retryable: true
        )
        try await outbound.write(.resultRejected(.init(taskID: complete.taskID, token: complete.token, reason: reason)))
    }

    func recordFailure(_ failed: FarmMessage.TaskFailed, agentName: String) async throws {
        self.dropStaged()
        let jobError = try await self.context.store.fail(
            taskID: failed.taskID,
            token: failed.token,
            agentName: agentName,
            message: failed.message,
            retryable: failed.retryable
        )
        self.logger.warning(
            "task failed on the agent",
            metadata: [
                "task": "\(failed.taskID)", "error": "\(failed.message)", "retryable": "\(failed.retryable)",
            ]
        )
        if let jobError { self.logger.error("job failed", metadata: ["error": "\(jobError)"]) }
        self.context.signals.notify(.everyone)
    }
}
