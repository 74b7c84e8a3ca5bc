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
/// `PostgresClient` (which must be running before the first query).
public final class CoordinatorService: Service, Sendable {
    private let client: PostgresClient
    private let configuration: CoordinatorConfiguration
    private let logger: Logger
    private let onListening: @Sendable (Int) -> Void
    private let signal = WorkSignal()
    private let heartbeats = HeartbeatBatcher()
    private let leases = ActiveLeases()
    /// When the scratch folder was last scanned for orphaned chunk sources: the janitor wakes on every work
    /// notification, and listing the folder that often is wasted work for files that live an hour.
    private let lastOrphanScan = Mutex<ContinuousClock.Instant?>(nil)

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
        let context = CoordinatorContext(
            store: self.store,
            signal: self.signal,
            heartbeats: self.heartbeats,
            leases: self.leases,
            configuration: self.configuration,
            logger: self.logger
        )
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: self.configuration.host, port: self.configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addFarmMessageHandlers(
                        maximumFrameLength: self.configuration.maximumFrameLength
                    )
                    return try NIOAsyncChannel<FarmMessage, FarmMessage>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? self.configuration.port
        self.logger.info(
            "coordinator listening for agents",
            metadata: ["host": "\(self.configuration.host)", "port": "\(port)"]
        )
        self.onListening(port)

        // On graceful shutdown the listener closes and every loop and session is cancelled: all state is in
        // PostgreSQL, and a task in flight is leased again when its agent reconnects elsewhere.
        do {
            try await cancelWhenGracefulShutdown {
                try await self.serve(server: server, context: context)
            }
        } catch is CancellationError {
            self.logger.info("coordinator stopped")
        }
    }

    private func serve(
        server: NIOAsyncChannel<NIOAsyncChannel<FarmMessage, FarmMessage>, Never>,
        context: CoordinatorContext
    ) async throws {
        try await withTaskCancellationHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    try await server.executeThenClose { connections in
                        try await withThrowingDiscardingTaskGroup { sessions in
                            for try await connection in connections {
                                // One child task per connection; a bad peer ends only its own session.
                                sessions.addTask { await AgentSession(channel: connection, context: context).run() }
                            }
                        }
                    }
                }
                group.addTask { await self.listenForWork() }
                group.addTask {
                    let store = self.store
                    let leaseSeconds = self.configuration.leaseSeconds
                    await self.heartbeats.run { batch in try await store.heartbeat(batch, leaseSeconds: leaseSeconds) }
                }
                group.addTask {
                    await self.loop(every: self.pollInterval, name: "planner") { try await self.planPendingJobs() }
                }
                group.addTask {
                    await self.loop(
                        every: .milliseconds(Int64(self.configuration.reapIntervalSeconds * 1000)),
                        name: "reaper",
                        waitsForSignal: false
                    ) {
                        try await self.reapExpiredLeases()
                    }
                }
                group.addTask {
                    await self.loop(every: self.pollInterval, name: "stitcher") { try await self.stitchFinishedJobs() }
                }
                group.addTask {
                    await self.loop(every: .seconds(60), name: "janitor") {
                        try await self.cleanUp()
                    }
                }
            }
        } onCancel: {
            self.logger.info("coordinator shutting down")
            server.channel.close(promise: nil)
        }
    }

    private var pollInterval: Duration { .milliseconds(Int64(self.configuration.pollIntervalSeconds * 1000)) }

    /// Runs `body` repeatedly until cancelled: after each round it waits for the work signal or `interval`.
    /// A database error is logged and retried, so a PostgreSQL restart is ridden out.
    private func loop(
        every interval: Duration,
        name: String,
        waitsForSignal: Bool = true,
        _ body: @Sendable () async throws -> Void
    ) async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let seen = self.signal.generation
            do {
                try await body()
            } catch is CancellationError {
                return
            } catch {
                self.logger.warning(
                    "\(name) round failed; retrying",
                    metadata: ["error": "\(String(reflecting: error))"]
                )
            }
            if waitsForSignal {
                await self.signal.wait(since: seen, timeout: interval)
            } else {
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Holds one connection in LISTEN on the work channel: every notification wakes the waiting sessions, and a
    /// `revoke:<job>` one also revokes that job's leases held through this coordinator.
    private func listenForWork() async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await self.client.withConnection { connection in
                    try await connection.listen(on: JobStore.workChannel) { notifications in
                        for try await notification in notifications {
                            self.revokeIfAsked(notification.payload)
                            self.signal.notifyAll()
                        }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("LISTEN connection lost; reconnecting", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func revokeIfAsked(_ payload: String) {
        guard payload.hasPrefix(JobStore.revokePrefix),
            let jobID = Int64(payload.dropFirst(JobStore.revokePrefix.count))
        else { return }
        let revoked = self.leases.revoke(jobID: jobID, reason: "job \(jobID) ended (cancelled or failed)")
        if revoked > 0 {
            self.logger.info(
                "revoked the leases of an ended job",
                metadata: ["job": "\(jobID)", "leases": "\(revoked)"]
            )
        }
    }

    private func planPendingJobs() async throws {
        while let (jobID, error) = try await self.store.planNextJob({ job in
            try await JobPlanning.plan(job)
        }) {
            if let error {
                self.logger.error("job failed while planning", metadata: ["job": "\(jobID)", "error": "\(error)"])
            } else {
                self.logger.info("job planned", metadata: ["job": "\(jobID)"])
                self.signal.notifyAll()
            }
        }
    }

    private func reapExpiredLeases() async throws {
        let reaped = try await self.store.reapExpiredLeases()
        for lease in reaped {
            self.logger.warning(
                "lease expired",
                metadata: ["task": "\(lease.taskID)", "agent": "\(lease.agent)", "requeued": "\(lease.requeued)"]
            )
        }
        if !reaped.isEmpty { self.signal.notifyAll() }
    }

    /// Removes the partial output of failed and cancelled jobs, and chunk sources orphaned by a crash.
    private func cleanUp() async throws {
        let store = self.store
        while let jobID = try await store.cleanNextEndedJob({ output, files in
            try await NIOThreadPool.singleton.runIfActive {
                try Stitcher.removePartialOutput(outputDirectory: output, publishedFiles: files)
            }
        }) {
            self.logger.info("removed the partial output of an ended job", metadata: ["job": "\(jobID)"])
        }
        let now = ContinuousClock.now
        let scanDue = self.lastOrphanScan.withLock { last in
            guard last.map({ now - $0 >= .seconds(600) }) ?? true else { return false }
            last = now
            return true
        }
        guard scanDue else { return }
        let scratch = self.configuration.scratchDirectory
        let orphans = try await NIOThreadPool.singleton.runIfActive {
            Stitcher.removeOrphanedSources(scratchDirectory: scratch, olderThan: 3600)
        }
        if orphans > 0 { self.logger.info("removed orphaned chunk sources", metadata: ["files": "\(orphans)"]) }
    }

    private func stitchFinishedJobs() async throws {
        try await self.store.promoteFinishedJobs()
        while let (jobID, error) = try await self.store.stitchNextJob({ job in
            try await NIOThreadPool.singleton.runIfActive { try Stitcher.stitch(job) }
        }) {
            if let error {
                self.logger.error("job failed while stitching", metadata: ["job": "\(jobID)", "error": "\(error)"])
            } else {
                self.logger.info("job ready", metadata: ["job": "\(jobID)"])
            }
        }
    }
}
