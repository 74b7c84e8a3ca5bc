import FarmAgent
import FarmCoordinator
import FarmProtocol
import Logging
import PostgresNIO

/// A whole farm in one process: a coordinator on a free loopback port and `agents` agents connected to it over real
/// TCP, on one PostgreSQL. `farm transcode` runs one, and so do the tests' in-process farms: there is one way to wire
/// a farm, and the tests run it.
///
/// Shaped like hummingbird's `buildApplication`: configuration in, one value that runs everything out. Its
/// `PostgresClient` must be running before `run` (a `ServiceGroup` beside it, as `farm transcode` does, or a task).
package struct AllInOneFarm: Sendable {
    package struct Configuration: Sendable {
        package var agents: Int
        /// Agents are named `<prefix>1`, `<prefix>2`, …
        package var agentNamePrefix: String
        /// The coordinator's settings; its host and port are always loopback and a free port.
        package var coordinator: CoordinatorConfiguration
        /// What every agent is made to do wrong or slowly (tests only).
        package var agentFaults = FaultInjection()

        package init(
            agents: Int,
            agentNamePrefix: String = "local-",
            coordinator: CoordinatorConfiguration = CoordinatorConfiguration(
                secret: ClusterSecret(ClusterSecret.makeNonce())
            )
        ) {
            self.agents = agents
            self.agentNamePrefix = agentNamePrefix
            self.coordinator = coordinator
            self.coordinator.host = "127.0.0.1"
            self.coordinator.port = 0
        }
    }

    /// What `run`'s body gets once agents can connect.
    package struct Running: Sendable {
        package var store: JobStore
        package var port: Int
    }

    /// Runs one part of the farm (the coordinator, an agent) as a child task; a caller can wrap each to name the part
    /// that does not stop when the farm ends (the tests' teardown watch does).
    package typealias ChildRunner =
        @Sendable (_ name: String, _ body: @Sendable () async throws -> Void) async throws
        -> Void

    private let client: PostgresClient
    package let configuration: Configuration
    private let logger: Logger
    private let runChild: ChildRunner

    package init(
        client: PostgresClient,
        configuration: Configuration,
        logger: Logger,
        runChild: @escaping ChildRunner = { _, body in try await body() }
    ) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.runChild = runChild
    }

    /// Starts the coordinator, then the agents once it listens, runs `body`, and stops the farm when `body` returns
    /// or throws (a graceful shutdown of the surrounding `ServiceGroup` stops it too).
    package func run<Result: Sendable>(_ body: @Sendable (Running) async throws -> Result) async throws -> Result {
        let (ports, portContinuation) = AsyncStream<Int>.makeStream()
        let coordinator = CoordinatorService(
            client: self.client,
            configuration: self.configuration.coordinator,
            logger: self.logger,
            onListening: { portContinuation.yield($0) }
        )
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { portContinuation.finish() }
                try await self.runChild("coordinator") { try await coordinator.run() }
            }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                // The coordinator ended before it listened: its error says why.
                try await group.next()
                throw AllInOneFarmError("the coordinator stopped before it listened for agents")
            }
            for index in 0..<self.configuration.agents {
                let name = "\(self.configuration.agentNamePrefix)\(index + 1)"
                let agent = AgentService(
                    configuration: AgentConfiguration(
                        coordinatorHost: "127.0.0.1",
                        coordinatorPort: port,
                        secret: self.configuration.coordinator.secret,
                        name: name,
                        faultInjection: self.configuration.agentFaults
                    ),
                    logger: self.logger
                )
                group.addTask { try await self.runChild("agent \(name)") { try await agent.run() } }
            }
            return try await body(Running(store: JobStore(client: self.client, logger: self.logger), port: port))
        }
    }
}

package struct AllInOneFarmError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
