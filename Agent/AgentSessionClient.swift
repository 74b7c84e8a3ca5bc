import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOPosix

/// The agent's side of one connection: handshake, then lease → receive source → encode (heartbeating) → send
/// segments → report, until the connection ends or the agent drains.
struct AgentSessionClient {
    let worker: AgentWorker
    var messages: AsyncThrowingStream<FarmMessage, any Error>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<FarmMessage>
    let leaseWatch: LeaseWatch

    private var configuration: AgentConfiguration { self.worker.configuration }
    private var logger: Logger { self.worker.logger }

    init(
        worker: AgentWorker,
        messages: AsyncThrowingStream<FarmMessage, any Error>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<FarmMessage>,
        leaseWatch: LeaseWatch
    ) {
        self.worker = worker
        self.messages = messages
        self.outbound = outbound
        self.leaseWatch = leaseWatch
    }

    private mutating func next() async throws -> FarmMessage {
        guard let message = try await self.messages.next() else {
            throw FarmProtocolError.unexpected("the coordinator closed the connection")
        }
        if case .refused(let refused) = message {
            throw AgentError("the coordinator refused this agent: \(refused.reason)")
        }
        return message
    }

    mutating func run() async throws {
        let heartbeatInterval = try await self.handshake()
        while !self.leaseWatch.isDraining {
            try await self.outbound.write(.leaseRequest)
            guard case .lease(let lease) = try await self.next() else {
                throw FarmProtocolError.unexpected("expected a lease after a lease request")
            }
            try await self.work(on: lease, heartbeatInterval: heartbeatInterval)
        }
        self.logger.info("agent drained: no new task will be taken")
    }

    private mutating func handshake() async throws -> Double {
        try await self.outbound.write(.hello(.init(agentName: self.configuration.name)))
        guard case .challenge(let challenge) = try await self.next() else {
            throw FarmProtocolError.unexpected("expected a challenge after hello")
        }
        let proof = self.configuration.secret.proof(nonce: challenge.nonce, agentName: self.configuration.name)
        try await self.outbound.write(.authenticate(.init(proof: proof, capabilities: self.worker.capabilities)))
        guard case .welcome(let welcome) = try await self.next() else {
            throw FarmProtocolError.unexpected("expected welcome after authentication")
        }
        self.logger.info("joined the farm", metadata: ["agentID": "\(welcome.agentID)"])
        return welcome.heartbeatIntervalSeconds
    }

    private mutating func work(on lease: FarmMessage.Lease, heartbeatInterval: Double) async throws {
        var logger = self.logger
        logger[metadataKey: "task"] = "\(lease.taskID)"
        logger[metadataKey: "token"] = "\(lease.token)"
        self.leaseWatch.begin(taskID: lease.taskID, leaseSeconds: lease.leaseSeconds)
        defer { self.leaseWatch.end() }
        // Unique to this lease in this process: two agents with one name (two farms on one machine, or the tests'
        // in-process farms side by side) get the same task IDs and tokens from their own databases.
        let folder = URL(fileURLWithPath: self.configuration.workDirectory)
            .appendingPathComponent(
                "farm-\(self.configuration.name)-task-\(lease.taskID)-\(lease.token)-\(UUID().uuidString.prefix(8))"
            )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let sourcePath = folder.appendingPathComponent("source.nut").path
        try await self.receiveSource(lease, into: sourcePath)
        let faults = self.configuration.faultInjection
        if let crashOnChunk = faults.crashOnChunk, lease.spec.kind == .video, lease.spec.chunkIndex == crashOnChunk {
            logger.critical("fault injection: crashing on chunk \(crashOnChunk)")
            kill(getpid(), SIGKILL)
        }
        let frameDelayMicroseconds = faults.frameDelay.map {
            UInt32($0.components.seconds * 1_000_000 + $0.components.attoseconds / 1_000_000_000_000)
        }

        let outbound = self.outbound
        let watch = self.leaseWatch
        let result: Result<[EncodedFile], any Error> = await withTaskGroup(of: Result<[EncodedFile], any Error>?.self) {
            group in
            group.addTask {
                // Heartbeats go on through encoding and upload, so a long task keeps its lease.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int64(heartbeatInterval * 1000)))
                    if Task.isCancelled { break }
                    try? await outbound.write(
                        .heartbeat(.init(taskID: lease.taskID, token: lease.token, progress: watch.progress))
                    )
                }
                return nil
            }
            group.addTask {
                do {
                    let encoder = ChunkEncoder(spec: lease.spec, sourcePath: sourcePath, workDirectory: folder.path)
                    let files = try await NIOThreadPool.singleton.runIfActive {
                        try encoder.run { progress in
                            watch.progress = progress
                            if let frameDelayMicroseconds { usleep(frameDelayMicroseconds) }
                            return watch.isHeld || faults.ignoreLeaseLoss
                        }
                    }
                    return .success(files)
                } catch {
                    return .failure(error)
                }
            }
            var outcome: Result<[EncodedFile], any Error> = .failure(CancellationError())
            while let next = await group.next() {
                if let next {
                    outcome = next
                    group.cancelAll()
                }
            }
            return outcome
        }

        switch result {
        case .failure(let error)
        where error is CancellationError || !(self.leaseWatch.isHeld || faults.ignoreLeaseLoss):
            logger.warning("lease lost; abandoned the task")
            return
        case .failure(let error):
            let retryable = FarmMessage.TaskFailed.isRetryable(error)
            logger.error("encoding failed", metadata: ["error": "\(error)", "retryable": "\(retryable)"])
            try await self.outbound.write(
                .taskFailed(.init(taskID: lease.taskID, token: lease.token, message: "\(error)", retryable: retryable))
            )
        case .success(let files):
            guard self.leaseWatch.isHeld || faults.ignoreLeaseLoss else {
                logger.warning("lease lost before upload; abandoned the task")
                return
            }
            try await self.upload(files, lease: lease)
            try await self.outbound.write(
                .taskComplete(.init(taskID: lease.taskID, token: lease.token, outputs: files.map(\.description)))
            )
            while true {
                switch try await self.next() {
                case .resultAccepted(let verdict) where verdict.taskID == lease.taskID:
                    logger.info("result accepted", metadata: ["segments": "\(files.count)"])
                    return
                case .resultRejected(let verdict) where verdict.taskID == lease.taskID:
                    logger.warning("result refused by the coordinator", metadata: ["reason": "\(verdict.reason ?? "")"])
                    return
                case let other:
                    logger.debug("ignored a message while awaiting the verdict", metadata: ["kind": "\(other.kind)"])
                }
            }
        }
    }

    private mutating func receiveSource(_ lease: FarmMessage.Lease, into path: String) async throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hasher = SHA256Stream()
        var received: Int64 = 0
        while true {
            switch try await self.next() {
            case .sourceData(let bytes):
                received += Int64(bytes.readableBytes)
                guard received <= lease.sourceBytes else {
                    throw FarmProtocolError.malformed("the coordinator sent more source bytes than announced")
                }
                hasher.update(bytes.readableBytesView)
                try handle.write(contentsOf: bytes.readableBytesView)
            case .sourceEnd(let end):
                guard end.taskID == lease.taskID, received == lease.sourceBytes, end.sha256 == hasher.finalize() else {
                    throw FarmProtocolError.malformed(
                        "task \(lease.taskID)'s source arrived damaged (size or SHA-256 differs)"
                    )
                }
                return
            case let other:
                throw FarmProtocolError.unexpected("\(other.kind) while receiving a task's source")
            }
        }
    }

    private func upload(_ files: [EncodedFile], lease: FarmMessage.Lease) async throws {
        let pieceSize = FarmMessage.dataPieceSize(maximumFrameLength: self.configuration.maximumFrameLength)
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file.localPath))
            var offset = 0
            repeat {
                let end = min(offset + pieceSize, data.count)
                try await self.outbound.write(
                    .segmentData(
                        .init(
                            taskID: lease.taskID,
                            token: lease.token,
                            path: file.description.path,
                            offset: Int64(offset)
                        ),
                        ByteBuffer(bytes: data[offset..<end])
                    )
                )
                offset = end
            } while offset < data.count
        }
    }
}
