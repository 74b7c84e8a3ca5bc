import FarmProtocol
import FarmTestSupport
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Testing

@testable import FarmCoordinator

/// The agent listener stops cleanly whatever is in flight: a coordinator shutting down while agents connect (a
/// `farm transcode` whose job fails at once, a rolling restart) must exit, not trap.
@Suite("Agent listener")
struct AgentListenerTests {
    /// A burst of connections, then the listener cancelled at once: some are accepted but not yet handed to a
    /// session. NIO drops those, and before `AcceptedConnection` the process trapped ("Deinited NIOAsyncWriter
    /// without calling finish()") in most rounds.
    @Test func cancellingWithConnectionsNotYetHandedOutEndsCleanly() async throws {
        var configuration = CoordinatorConfiguration(secret: ClusterSecret("test-secret"))
        configuration.port = 0
        // No session gets as far as a query: the connections never say a word.
        let client = PostgresClient(
            configuration: .init(
                host: "127.0.0.1",
                port: 1,
                username: "none",
                password: nil,
                database: nil,
                tls: .disable
            ),
            backgroundLogger: testLogger
        )
        let context = CoordinatorContext(
            store: JobStore(client: client, logger: testLogger),
            signals: WorkSignals(),
            heartbeats: HeartbeatBatcher(),
            leases: ActiveLeases(),
            progress: ProgressPublisher(),
            configuration: configuration,
            logger: testLogger
        )
        for _ in 0..<10 {
            let server = try await AgentListenerService.bind(configuration)
            let port = try #require(server.channel.localAddress?.port)
            let listening = Task { try await AgentListenerService(server: server, context: context).run() }
            var connections: [any Channel] = []
            for _ in 0..<64 {
                connections.append(
                    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(
                        host: "127.0.0.1",
                        port: port
                    ).get()
                )
            }
            listening.cancel()
            _ = await listening.result
            for connection in connections { try? await connection.close() }
        }
    }
}
