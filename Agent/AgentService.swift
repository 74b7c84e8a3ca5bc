import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A stateless encoding agent: connects to a coordinator, leases tasks, encodes them and sends the segments back.
///
/// On graceful shutdown (SIGTERM) it drains: it finishes the task in hand, takes no new one, and stops.
public final class AgentService: Service, Sendable {
    private let configuration: AgentConfiguration
    private let logger: Logger

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let hardware = HardwareProbe.probe()
        if let reason = hardware.vaapiUnavailableReason {
            self.logger.notice(
                "no usable VA-API device, encoding on the CPU with libx264",
                metadata: ["reason": "\(reason)"]
            )
        }
        let capabilities = FarmMessage.Capabilities(
            encoders: hardware.encoders,
            vaapiDevice: hardware.vaapiDevice,
            slots: self.configuration.slots,
            vaapiUnavailableReason: hardware.vaapiUnavailableReason,
            cpuCount: ProcessInfo.processInfo.activeProcessorCount,
            version: farmVersion,
            instance: ClusterSecret.makeNonce()
        )
        let drain = AgentDrain()
        try await withThrowingDiscardingTaskGroup { group in
            for slot in 0..<self.configuration.slots {
                group.addTask {
                    var logger = self.logger
                    logger[metadataKey: "slot"] = "\(slot)"
                    try await AgentWorker(
                        configuration: self.configuration,
                        capabilities: capabilities,
                        drain: drain,
                        logger: logger
                    ).run()
                }
            }
        }
        if drain.isRequested { self.logger.notice("drained as the coordinator asked; stopping") }
    }
}

/// A drain of the whole agent, as the coordinator asks (`farm agents drain`): every slot finishes the task in hand,
/// takes no new one and does not reconnect, whichever slot's connection brought the request.
final class AgentDrain: Sendable {
    private struct State {
        var requested = false
        var connections: [UInt64: (watch: LeaseWatch, channel: any Channel)] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    var isRequested: Bool { self.state.withLock { $0.requested } }

    /// Follows a slot's connection until `leave`; drained at once when the drain was asked for already.
    func join(_ watch: LeaseWatch, channel: any Channel) -> UInt64 {
        let (id, requested) = self.state.withLock { state in
            defer { state.nextID += 1 }
            state.connections[state.nextID] = (watch, channel)
            return (state.nextID, state.requested)
        }
        if requested, watch.markDraining() { channel.close(promise: nil) }
        return id
    }

    func leave(_ id: UInt64) {
        _ = self.state.withLock { $0.connections.removeValue(forKey: id) }
    }

    /// Drains every slot: an idle connection closes now, a busy one after its task.
    func request() {
        let connections = self.state.withLock { state in
            state.requested = true
            return Array(state.connections.values)
        }
        for connection in connections where connection.watch.markDraining() { connection.channel.close(promise: nil) }
    }
}

/// One slot of an agent: one connection, one task at a time, reconnecting with backoff when the connection drops.
struct AgentWorker {
    let configuration: AgentConfiguration
    let capabilities: FarmMessage.Capabilities
    let drain: AgentDrain
    let logger: Logger

    func run() async throws {
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled, !Task.isShuttingDownGracefully, !self.drain.isRequested {
            do {
                try await self.connectAndWork()
                delay = .milliseconds(250)
            } catch let error as AgentError {
                throw error
            } catch is CancellationError {
                return
            } catch {
                // Stopping anyway: a connection cut by the shutdown is not worth a warning.
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                self.logger.warning(
                    "connection to the coordinator failed; retrying",
                    metadata: [
                        "coordinator": "\(self.configuration.coordinatorHost):\(self.configuration.coordinatorPort)",
                        "error": "\(error)", "retryIn": "\(delay)",
                    ]
                )
            }
            if Task.isShuttingDownGracefully || self.drain.isRequested { return }
            // Exponential backoff with jitter, so a farm of agents does not reconnect in lockstep.
            let jittered = delay * Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: jittered)
            delay = min(delay * 2, self.configuration.maximumReconnectDelay)
        }
    }

    private func connectAndWork() async throws {
        let maximumFrameLength = self.configuration.maximumFrameLength
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: self.configuration.coordinatorHost, port: self.configuration.coordinatorPort) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addFarmMessageHandlers(maximumFrameLength: maximumFrameLength)
                    return try NIOAsyncChannel<FarmMessage, FarmMessage>(wrappingChannelSynchronously: channel)
                }
            }
        let leaseWatch = LeaseWatch()
        let joined = self.drain.join(leaseWatch, channel: channel.channel)
        defer { self.drain.leave(joined) }
        try await channel.executeThenClose { inbound, outbound in
            let (messages, continuation) = AsyncThrowingStream<FarmMessage, any Error>.makeStream()
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // The reader: heartbeat answers go to the lease watch at once (they arrive while the work task
                    // is busy encoding); everything else is handed to the work task in order.
                    group.addTask {
                        do {
                            for try await message in inbound {
                                switch message {
                                case .heartbeatAck(let ack): leaseWatch.acknowledged(ack)
                                case .revoke(let revoke):
                                    if leaseWatch.revoked(taskID: revoke.taskID) {
                                        logger.warning(
                                            "the coordinator revoked the task; stopping it",
                                            metadata: ["task": "\(revoke.taskID)", "reason": "\(revoke.reason)"]
                                        )
                                    }
                                case .drain:
                                    // The coordinator asks this agent to stop after its current tasks.
                                    self.drain.request()
                                default: continuation.yield(message)
                                }
                            }
                            continuation.finish()
                        } catch {
                            continuation.finish(throwing: error)
                        }
                    }
                    group.addTask {
                        var session = AgentSessionClient(
                            worker: self,
                            messages: messages.makeAsyncIterator(),
                            outbound: outbound,
                            leaseWatch: leaseWatch
                        )
                        try await session.run()
                    }
                    try await group.next()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                // Drain: an idle connection closes now; a busy one finishes its task first.
                if leaseWatch.markDraining() { channel.channel.close(promise: nil) }
            }
        }
    }
}
