import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOPosix
import Synchronization

/// What every agent session of one coordinator shares.
package struct CoordinatorContext: Sendable {
    package var store: JobStore
    package var signal: WorkSignal
    package var heartbeats: HeartbeatBatcher
    package var leases: ActiveLeases
    package var configuration: CoordinatorConfiguration
    package var logger: Logger
}

extension Mutex {
    /// A shared box around a mutex, for a value several sessions update.
    package final class Reference: Sendable {
        package let mutex: Mutex<Value>
        package init(_ value: sending Value) { self.mutex = Mutex(value) }
    }
}

/// One agent connection on the coordinator: executes what `AgentConnectionStateMachine` decides.
final class AgentSession {
    private let channel: NIOAsyncChannel<FarmMessage, FarmMessage>
    private let context: CoordinatorContext
    private var machine = AgentConnectionStateMachine()
    private var logger: Logger
    private var staged: StagedResult?
    /// The task this connection last leased: where its results go.
    private var leasedTask: LeasedTask?
    /// This session's key in `context.leases`.
    private let sessionKey: UInt64

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
        do {
            try await self.channel.executeThenClose { inbound, outbound in
                for try await message in inbound {
                    self.forgetRevokedLease()
                    let action = self.machine.received(message, nonce: ClusterSecret.makeNonce()) {
                        authenticate,
                        nonce,
                        name in
                        self.context.configuration.secret.verify(
                            proof: authenticate.proof,
                            nonce: nonce,
                            agentName: name
                        )
                    }
                    try await self.perform(action, message: message, outbound: outbound)
                    if self.machine.currentLease == nil { self.context.leases.release(session: self.sessionKey) }
                    if self.machine.isAuthenticated { handshakeDeadline.cancel() }
                    if self.machine.state == .closed { break }
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

    /// A lease revoked since the last message (its job ended) is over: what the agent sends for it now is refused.
    private func forgetRevokedLease() {
        guard let revoked = self.context.leases.takeRevoked(session: self.sessionKey),
            self.machine.currentLease?.token == revoked.token
        else { return }
        self.logger.info("lease revoked: its job ended", metadata: ["task": "\(revoked.taskID)"])
        self.machine.leaseEnded()
        self.staged?.discard()
        self.staged = nil
    }

    private func connectionEnded() async {
        self.context.leases.release(session: self.sessionKey)
        self.staged?.discard()
        guard let lease = self.machine.currentLease, case .working(_, let agentName, _) = self.machine.state else {
            return
        }
        // The agent is gone mid-task: give the task back now rather than when its lease runs out.
        self.logger.warning(
            "agent disconnected while working; requeueing its task",
            metadata: ["task": "\(lease.taskID)"]
        )
        _ = try? await self.context.store.fail(
            taskID: lease.taskID,
            token: lease.token,
            agentName: agentName,
            message: "the agent disconnected mid-task",
            retryable: true
        )
        self.context.signal.notifyAll()
    }

    private func perform(
        _ action: AgentConnectionStateMachine.Action,
        message: FarmMessage,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        switch action {
        case .sendChallenge(let challenge):
            try await outbound.write(.challenge(challenge))

        case .register(let agentName, let capabilities):
            let agentID = try await self.context.store.registerAgent(
                name: agentName,
                capabilities: capabilities,
                coordinator: self.context.configuration.name
            )
            self.logger[metadataKey: "agent"] = "\(agentName)"
            try await self.perform(self.machine.registered(agentID: agentID), message: message, outbound: outbound)

        case .sendWelcome(let agentID):
            self.context.signal.notifyAll()
            self.logger.info("agent joined", metadata: ["agentID": "\(agentID)"])
            try await outbound.write(
                .welcome(
                    .init(
                        agentID: agentID,
                        heartbeatIntervalSeconds: self.context.configuration.heartbeatIntervalSeconds
                    )
                )
            )

        case .findWork(let agentID, let agentName):
            try await self.leaseAndSend(agentID: agentID, agentName: agentName, outbound: outbound)

        case .sendLeaseAndSource:
            break  // done by leaseAndSend, which drives the machine itself

        case .extendLease(let taskID, let token):
            let held = try await self.context.heartbeats.renew(taskID: taskID, token: token)
            if !held {
                self.logger.warning(
                    "heartbeat for a lease no longer held; telling the agent to stop",
                    metadata: ["task": "\(taskID)"]
                )
                self.machine.leaseEnded()
                self.staged?.discard()
                self.staged = nil
            }
            try await outbound.write(.heartbeatAck(.init(taskID: taskID, leaseHeld: held)))

        case .reportLeaseLost(let taskID):
            try await outbound.write(.heartbeatAck(.init(taskID: taskID, leaseHeld: false)))

        case .storeSegmentData:
            guard case .segmentData(let header, let body) = message, let lease = self.machine.currentLease else {
                return
            }
            if self.staged == nil || self.staged?.token != lease.token {
                self.staged = try StagedResult(lease: lease, outputDirectory: self.leasedTask?.outputDirectory ?? "")
            }
            try self.staged!.append(header: header, body: body)

        case .discardStaleData(let taskID, let token):
            self.logger.debug(
                "dropped segment data of a lost lease",
                metadata: ["task": "\(taskID)", "token": "\(token)"]
            )

        case .commit(let complete, let agentName):
            try await self.commit(complete, agentName: agentName, outbound: outbound)

        case .recordFailure(let failed, let agentName):
            self.staged?.discard()
            self.staged = nil
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
            self.context.signal.notifyAll()

        case .rejectStale(let taskID, let token, let reason):
            self.logger.warning(
                "refused a result for a lease this connection no longer holds",
                metadata: ["task": "\(taskID)", "token": "\(token)", "reason": "\(reason)"]
            )
            try await outbound.write(
                .resultRejected(.init(taskID: taskID, token: token, reason: "stale lease: \(reason)"))
            )

        case .refuseAndClose(let reason):
            self.logger.warning("refused an agent", metadata: ["reason": "\(reason)"])
            try? await outbound.write(.refused(.init(reason: reason)))

        case .closeWithError(let error):
            self.logger.warning("closing agent connection", metadata: ["reason": "\(error)"])
            try? await outbound.write(.refused(.init(reason: error.description)))
            throw error
        }
    }

    /// Waits for a task (LISTEN/NOTIFY wakes it), leases it and streams its source. A task whose source cannot be
    /// read fails at once with the reason, and the wait goes on.
    private func leaseAndSend(
        agentID: Int64,
        agentName: String,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        let store = self.context.store
        while true {
            try Task.checkCancellation()
            guard self.channel.channel.isActive else { throw ChannelError.ioOnClosedChannel }
            let seen = self.context.signal.generation
            guard
                let task = try await store.lease(
                    agentID: agentID,
                    agentName: agentName,
                    leaseSeconds: self.context.configuration.leaseSeconds
                )
            else {
                await self.context.signal.wait(
                    since: seen,
                    timeout: .milliseconds(Int64(self.context.configuration.pollIntervalSeconds * 1000))
                )
                continue
            }
            let scratch = URL(fileURLWithPath: self.context.configuration.scratchDirectory)
                // Unique on the machine, not only in one database: coordinators of two farms (or two test runs)
                // may share a scratch folder, and their task ids and tokens repeat.
                .appendingPathComponent("farm-source-\(task.taskID)-\(task.token)-\(UUID().uuidString).nut").path
            defer { try? FileManager.default.removeItem(atPath: scratch) }
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
                let retryable = (error as? MediaError)?.isRetryable ?? true
                let jobError = try await store.fail(
                    taskID: task.taskID,
                    token: task.token,
                    agentName: agentName,
                    message: "preparing the source failed: \(error)",
                    retryable: retryable
                )
                self.logger.error(
                    "could not prepare a task's source",
                    metadata: ["task": "\(task.taskID)", "error": "\(error)"]
                )
                if let jobError {
                    self.logger.error("job failed", metadata: ["job": "\(task.jobID)", "error": "\(jobError)"])
                }
                continue
            }
            // The agent gets the times of the copy it is sent (moved when the source's are negative).
            var leased = task
            leased.spec = task.spec.shifted(by: shift.units)
            _ = self.machine.leased(taskID: leased.taskID, token: leased.token, spec: leased.spec)
            self.leasedTask = leased
            self.context.leases.hold(
                session: self.sessionKey,
                jobID: leased.jobID,
                taskID: leased.taskID,
                token: leased.token,
                channel: self.channel.channel
            )
            do {
                try await self.sendSource(leased, path: scratch, outbound: outbound)
            } catch {
                self.machine.leaseEnded()
                try? await store.releaseLease(taskID: leased.taskID, token: leased.token)
                throw error
            }
            self.logger.info(
                "leased task",
                metadata: [
                    "task": "\(leased.taskID)", "token": "\(leased.token)", "job": "\(leased.jobID)",
                    "attempt": "\(leased.attempts)",
                ]
            )
            return
        }
    }

    private func sendSource(
        _ task: LeasedTask,
        path: String,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: 0)
        try await outbound.write(
            .lease(
                .init(
                    taskID: task.taskID,
                    token: task.token,
                    leaseSeconds: self.context.configuration.leaseSeconds,
                    spec: task.spec,
                    sourceBytes: Int64(size)
                )
            )
        )
        var hasher = SHA256Stream()
        let pieceSize = max(1024, min(1 << 20, self.context.configuration.maximumFrameLength - 64))
        while let data = try handle.read(upToCount: pieceSize), !data.isEmpty {
            hasher.update(data)
            try await outbound.write(.sourceData(ByteBuffer(bytes: data)))
        }
        try await outbound.write(.sourceEnd(.init(taskID: task.taskID, sha256: hasher.finalize())))
    }

    private func commit(
        _ complete: FarmMessage.TaskComplete,
        agentName: String,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    ) async throws {
        let staged = self.staged
        self.staged = nil
        let outputDirectory = self.leasedTask?.outputDirectory ?? ""
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
            try staged.publish(into: outputDirectory)
        }
        staged.discard()
        switch verdict {
        case .accepted(let remaining):
            self.logger.info("accepted result", metadata: ["task": "\(complete.taskID)", "remaining": "\(remaining)"])
            try await outbound.write(.resultAccepted(.init(taskID: complete.taskID, token: complete.token)))
            if remaining == 0 { self.context.signal.notifyAll() }
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
    private func rejectAndFail(
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
}
