import FarmMedia
import FarmProtocol
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOPosix

/// Finding work for an idle connection and sending the agent its lease and source.
extension AgentSession {
    /// Leases a task (after waiting for a work notification since `waitingSince`, when the last look found none) and
    /// cuts its source into a scratch file; returns the machine's answer to what came of it.
    func findWork(agentID: Int64, agentName: String, waitingSince: UInt64?) async throws -> Action {
        if let waitingSince {
            // LISTEN/NOTIFY wakes the wait.
            await self.context.signals.agents.wait(
                since: waitingSince,
                timeout: .milliseconds(Int64(self.context.configuration.pollIntervalSeconds * 1000))
            )
        }
        try Task.checkCancellation()
        guard self.channel.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let seen = self.context.signals.agents.generation
        guard
            let task = try await self.context.store.lease(
                agentID: agentID,
                agentName: agentName,
                leaseSeconds: self.context.configuration.leaseSeconds
            )
        else {
            return self.machine.noLeaseFound(signalGeneration: seen)
        }
        let scratch = self.context.configuration.scratchDirectory
        let prepared: ChunkSourceCopy.Prepared
        do {
            prepared = try await self.keepingLeaseAlive(taskID: task.taskID, token: task.token) {
                try await NIOThreadPool.singleton.runIfActive {
                    try ChunkSourceCopy.prepare(task, scratchDirectory: scratch)
                }
            }
        } catch {
            self.logger.error(
                "could not prepare a task's source",
                metadata: ["task": "\(task.taskID)", "job": "\(task.jobID)", "error": "\(error)"]
            )
            return self.machine.sourceNotPrepared(
                jobID: task.jobID,
                taskID: task.taskID,
                token: task.token,
                reason: "\(error)",
                retryable: FarmMessage.TaskFailed.isRetryable(error)
            )
        }
        let metadata: Logger.Metadata = ["task": "\(task.taskID)", "job": "\(task.jobID)", "copy": "\(prepared.path)"]
        switch prepared.start {
        case nil: self.logger.debug("reused the chunk's source copy", metadata: metadata)
        case .fellBack(let reason)?:
            self.logger.debug(
                "the seek to the chunk's first packet missed; read the source from its start",
                metadata: metadata.merging(["reason": "\(reason)"]) { $1 }
            )
        case .sought?, .fromStart?: break
        }
        // The agent gets the times of the copy it is sent (moved when the source's are negative).
        let lease = AgentConnectionStateMachine.CurrentLease(
            taskID: task.taskID,
            token: task.token,
            spec: task.spec.shifted(by: task.sourceShift.units)
        )
        return self.machine.leaseFound(
            .init(
                lease: lease,
                jobID: task.jobID,
                attempts: task.attempts,
                outputDirectory: task.outputDirectory,
                sourcePath: prepared.path
            )
        )
    }

    /// Fails a task whose source could not be cut, with the reason: an attempt is counted, and a source that cannot
    /// be read fails its job at once.
    func failUnpreparedTask(
        jobID: Int64,
        taskID: Int64,
        token: Int64,
        agentName: String,
        message: String,
        retryable: Bool
    ) async throws {
        let jobError = try await self.context.store.fail(
            taskID: taskID,
            token: token,
            agentName: agentName,
            message: message,
            retryable: retryable
        )
        if let jobError {
            self.logger.error("job failed", metadata: ["job": "\(jobID)", "error": "\(jobError)"])
        }
    }

    /// Holds the lease (so a revoke reaches the agent) and streams the lease and its source. The scratch copy stays
    /// for a retry or another task of the chunk (`ChunkSourceCopy`); when sending fails the machine gives the lease
    /// back.
    func sendLeaseAndSource(
        _ found: AgentConnectionStateMachine.FoundLease,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        self.context.leases.hold(
            session: self.sessionKey,
            jobID: found.jobID,
            taskID: found.lease.taskID,
            token: found.lease.token,
            channel: self.channel.channel
        )
        do {
            try await self.keepingLeaseAlive(taskID: found.lease.taskID, token: found.lease.token) {
                try await self.sendSource(found, outbound: outbound)
            }
        } catch {
            _ = try await self.execute(self.machine.sourceNotSent(), outbound: outbound)
            throw error
        }
        self.logger.info(
            "leased task",
            metadata: [
                "task": "\(found.lease.taskID)", "token": "\(found.lease.token)", "job": "\(found.jobID)",
                "attempt": "\(found.attempts)",
            ]
        )
    }

    private func sendSource(
        _ found: AgentConnectionStateMachine.FoundLease,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: found.sourcePath))
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: 0)
        try await outbound.write(
            .lease(
                .init(
                    taskID: found.lease.taskID,
                    token: found.lease.token,
                    leaseSeconds: self.context.configuration.leaseSeconds,
                    spec: found.lease.spec,
                    sourceBytes: Int64(size)
                )
            )
        )
        var hasher = SHA256Stream()
        let pieceSize = FarmMessage.dataPieceSize(maximumFrameLength: self.context.configuration.maximumFrameLength)
        while let data = try handle.read(upToCount: pieceSize), !data.isEmpty {
            hasher.update(data)
            try await outbound.write(.sourceData(ByteBuffer(bytes: data)))
        }
        try await outbound.write(.sourceEnd(.init(taskID: found.lease.taskID, sha256: hasher.finalize())))
    }

    /// Runs `body` while renewing the lease every heartbeat interval, as the agent does once it has its source:
    /// until then the coordinator is the one working on the task (extractions queue for the thread pool, and a burst
    /// of leases streams many sources at once), and the lease must not expire under it.
    private func keepingLeaseAlive<Result: Sendable>(
        taskID: Int64,
        token: Int64,
        _ body: () async throws -> Result
    ) async throws -> Result {
        let interval = Duration.seconds(configured: self.context.configuration.heartbeatIntervalSeconds)
        let heartbeats = self.context.heartbeats
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The lease was just granted or renewed: the first renewal is due one interval from now.
                repeat {
                    try await Task.sleep(for: interval)
                } while try await heartbeats.renew(taskID: taskID, token: token)
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}
