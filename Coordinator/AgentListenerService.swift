import FarmProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Accepts agent connections on the bound listener: one child task per connection, so a bad peer ends only its own
/// session. Cancelling it closes the listener.
struct AgentListenerService: Service {
    typealias Listener = NIOAsyncChannel<AcceptedConnection, Never>

    var server: Listener
    var context: CoordinatorContext

    /// Connections the kernel holds for the listener before it accepts them.
    static let backlog: Int32 = 4096

    /// Binds the agent port; the listener accepts nothing until `run`.
    static func bind(
        _ configuration: CoordinatorConfiguration
    ) async throws -> Listener {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A farm's agents all reconnect at once when a coordinator restarts: with NIO's default backlog (256),
            // 800 slots connecting together had connections reset before they were accepted. The kernel caps it
            // (`net.core.somaxconn`, 4096 on Debian 12).
            .serverChannelOption(.backlog, value: Self.backlog)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addFarmMessageHandlers(
                        maximumFrameLength: configuration.maximumFrameLength
                    )
                    return AcceptedConnection(
                        try NIOAsyncChannel<FarmMessage, FarmMessage>(wrappingChannelSynchronously: channel)
                    )
                }
            }
    }

    func run() async throws {
        try await withTaskCancellationHandler {
            try await self.server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { sessions in
                    for try await connection in connections {
                        let channel = connection.take()
                        sessions.addTask { await AgentSession(channel: channel, context: self.context).run() }
                    }
                }
            }
        } onCancel: {
            self.context.logger.info("coordinator shutting down")
            self.server.channel.close(promise: nil)
        }
    }
}

/// A connection accepted by the listener, on its way to its session. When the accept loop is cancelled, NIO drops the
/// connections it accepted but did not hand out yet (swift-nio issue 2637), and a dropped `NIOAsyncChannel` whose
/// writer was never finished traps the process. One that never reached a session is closed here instead.
final class AcceptedConnection: Sendable {
    private let channel: NIOAsyncChannel<FarmMessage, FarmMessage>
    private let taken = Atomic(false)

    init(_ channel: NIOAsyncChannel<FarmMessage, FarmMessage>) {
        self.channel = channel
    }

    /// The connection, for the one session that runs it.
    func take() -> NIOAsyncChannel<FarmMessage, FarmMessage> {
        self.taken.store(true, ordering: .relaxed)
        return self.channel
    }

    deinit {
        guard !self.taken.load(ordering: .relaxed) else { return }
        // `executeThenClose` finishes the writer and closes the connection; the agent reconnects elsewhere.
        let channel = self.channel
        Task { try? await channel.executeThenClose { _, _ in } }
    }
}
