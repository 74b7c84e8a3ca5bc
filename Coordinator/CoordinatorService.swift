import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The coordinator: accepts agents, plans submitted jobs, reaps expired leases and stitches finished jobs.
///
/// It holds no state a restart would lose; everything is in PostgreSQL. Run it in a `ServiceGroup` next to its
/// `PostgresClient` (which must be running before the first query). Its parts are named services in a group of
/// their own: `AgentListenerService`, `WorkListenerService`, `HeartbeatRenewalService`, `JobPlannerService`,
/// `LeaseReaperService`, `ProgressPlaylistsService`, `ThumbnailService`, `StitcherService` and `JanitorService`,
/// after the migrations as a prelude.
public final class CoordinatorService: Service, Sendable {
    private let client: PostgresClient
    private let configuration: CoordinatorConfiguration
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void

    /// - Parameter onListening: called with the bound port once agents can connect.
    public init(
        client: PostgresClient,
        configuration: CoordinatorConfiguration,
        logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    package var store: JobStore { JobStore(client: self.client, logger: self.logger) }

    public func run() async throws {
        try await Migrations.migrate(self.client, logger: self.logger)
        let signals = WorkSignals()
        let context = CoordinatorContext(
            store: self.store,
            signals: signals,
            heartbeats: HeartbeatBatcher(),
            leases: ActiveLeases(),
            progress: ProgressPublisher(),
            configuration: self.configuration,
            logger: self.logger
        )
        let server = try await AgentListenerService.bind(self.configuration)
        let port = server.channel.localAddress?.port ?? self.configuration.port
        self.logger.info(
            "coordinator listening for agents",
            metadata: ["host": "\(self.configuration.host)", "port": "\(port)"]
        )
        self.onListening(port)

        let polled = { (name: String) in
            RecurringRounds(
                name: name,
                interval: .seconds(configured: self.configuration.pollIntervalSeconds),
                signals: signals,
                logger: self.logger
            )
        }
        let services: [any Service] = [
            AgentListenerService(server: server, context: context),
            WorkListenerService(
                client: self.client,
                signals: signals,
                leases: context.leases,
                agents: context.agents,
                logger: self.logger
            ),
            AgentPresenceService(
                store: self.store,
                agents: context.agents,
                rounds: RecurringRounds(
                    name: "agent presence",
                    interval: .seconds(configured: self.configuration.heartbeatIntervalSeconds),
                    waitsForSignal: false,
                    signals: signals,
                    logger: self.logger
                )
            ),
            HeartbeatRenewalService(
                batcher: context.heartbeats,
                store: self.store,
                leaseSeconds: self.configuration.leaseSeconds
            ),
            JobPlannerService(store: self.store, rounds: polled("planner")),
            LeaseReaperService(
                store: self.store,
                rounds: RecurringRounds(
                    name: "reaper",
                    interval: .seconds(configured: self.configuration.reapIntervalSeconds),
                    waitsForSignal: false,
                    signals: signals,
                    logger: self.logger
                )
            ),
            ProgressPlaylistsService(publisher: context.progress, store: self.store, logger: self.logger),
            ThumbnailService(store: self.store, rounds: polled("thumbnails")),
            StitcherService(store: self.store, rounds: polled("stitcher")),
            JanitorService(
                store: self.store,
                rounds: RecurringRounds(name: "janitor", interval: .seconds(60), signals: signals, logger: self.logger),
                scratchDirectory: self.configuration.scratchDirectory
            ),
        ]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                logger: self.logger
            )
        )
        // On graceful shutdown the listener closes and every service and session is cancelled: all state is in
        // PostgreSQL, and a task in flight is leased again when its agent reconnects elsewhere.
        do {
            try await cancelWhenGracefulShutdown { try await group.run() }
        } catch is CancellationError {
            self.logger.info("coordinator stopped")
        }
    }
}
