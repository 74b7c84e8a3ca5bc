import FarmMedia
import FarmProtocol
import Foundation
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
            await self.context.signal.wait(
                since: waitingSince,
                timeout: .milliseconds(Int64(self.context.configuration.pollIntervalSeconds * 1000))
            )
        }
        try Task.checkCancellation()
        guard self.channel.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        let seen = self.context.signal.generation
        guard
            let task = try await self.context.store.lease(
                agentID: agentID,
                agentName: agentName,
                leaseSeconds: self.context.configuration.leaseSeconds
            )
        else {
            return self.machine.noLeaseFound(signalGeneration: seen)
        }
        let scratch = URL(fileURLWithPath: self.context.configuration.scratchDirectory)
            // Unique on the machine, not only in one database: coordinators of two farms (or two test runs)
            // may share a scratch folder, and their task ids and tokens repeat.
            .appendingPathComponent("farm-source-\(task.taskID)-\(task.token)-\(UUID().uuidString).nut").path
        let shift = TimestampShift(
            units: task.spec.nonNegativeShift(prerollPTS: task.extract.prerollPTS),
            timeBase: task.spec.timeBase
        )
        do {
            try await NIOThreadPool.singleton.runIfActive {
                if let first = task.extract.firstPacket, let last = task.extract.lastPacket {
                    try ChunkExtractor.extractVideo(
                        source: task.source,
                        streamIndex: task.extract.streamIndex,
                        firstPacket: first,
                        lastPacket: last,
                        shift: shift,
                        output: scratch
                    )
                } else {
                    try ChunkExtractor.extractStream(
                        source: task.source,
                        streamIndex: task.extract.streamIndex,
                        shift: shift,
                        output: scratch
                    )
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: scratch)
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
        // The agent gets the times of the copy it is sent (moved when the source's are negative).
        let lease = AgentConnectionStateMachine.CurrentLease(
            taskID: task.taskID,
            token: task.token,
            spec: task.spec.shifted(by: shift.units)
        )
        return self.machine.leaseFound(
            .init(
                lease: lease,
                jobID: task.jobID,
                attempts: task.attempts,
                outputDirectory: task.outputDirectory,
                sourcePath: scratch
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

    /// Holds the lease (so a revoke reaches the agent) and streams the lease and its source. The scratch file is
    /// removed whatever happens; when sending fails the machine gives the lease back.
    func sendLeaseAndSource(
        _ found: AgentConnectionStateMachine.FoundLease,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        defer { try? FileManager.default.removeItem(atPath: found.sourcePath) }
        self.context.leases.hold(
            session: self.sessionKey,
            jobID: found.jobID,
            taskID: found.lease.taskID,
            token: found.lease.token,
            channel: self.channel.channel
        )
        do {
            try await self.sendSource(found, outbound: outbound)
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
}
