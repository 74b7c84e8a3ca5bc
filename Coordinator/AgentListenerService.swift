import FarmProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Accepts agent connections on the bound listener: one child task per connection, so a bad peer ends only its own
/// session. Cancelling it closes the listener.
struct AgentListenerService: Service {
    var server: NIOAsyncChannel<NIOAsyncChannel<FarmMessage, FarmMessage>, Never>
    var context: CoordinatorContext

    /// Binds the agent port; the listener accepts nothing until `run`.
    static func bind(
        _ configuration: CoordinatorConfiguration
    ) async throws -> NIOAsyncChannel<NIOAsyncChannel<FarmMessage, FarmMessage>, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addFarmMessageHandlers(
                        maximumFrameLength: configuration.maximumFrameLength
                    )
                    return try NIOAsyncChannel<FarmMessage, FarmMessage>(wrappingChannelSynchronously: channel)
                }
            }
    }

    func run() async throws {
        try await withTaskCancellationHandler {
            try await self.server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { sessions in
                    for try await connection in connections {
                        sessions.addTask { await AgentSession(channel: connection, context: self.context).run() }
                    }
                }
            }
        } onCancel: {
            self.context.logger.info("coordinator shutting down")
            self.server.channel.close(promise: nil)
        }
    }
}
