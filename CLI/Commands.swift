import ArgumentParser
import FarmAPI
import FarmAgent
import FarmAllInOne
import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmProtocol
import FarmVerify
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

struct Transcode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Transcode one video to an HLS ladder on an all-in-one farm in this process.",
        discussion: """
            Starts a managed local PostgreSQL (unless --database-url is given), a coordinator, and N agents over \
            loopback TCP, then transcodes INPUT into OUTPUT (master.m3u8, one folder per rung, audio/, and \
            poster.jpg, thumbnails.jpg and thumbnails.vtt). With --http the farm serves the HTTP API too \
            (docs/api.md), with a new API key of tenant 'local' printed at start: the job of INPUT is that \
            tenant's, to follow and play; with --http and no INPUT the farm serves the API until Ctrl-C.
            """
    )

    @Argument(help: "The video to transcode (none: with --http, serve the API until stopped).")
    var input: String?

    @Option(name: [.short, .customLong("output")], help: "Output folder for the HLS ladder.")
    var output: String?

    @Option(help: "Number of local agents (default: one per core, as many as memory holds).")
    var agents: Int?

    @Option(help: "Use this PostgreSQL instead of the managed local one.")
    var databaseURL: String?

    @Option(help: "Serve the HTTP API at HOST:PORT too (e.g. 127.0.0.1:8080; port 0 picks a free one), or 'off'.")
    var http: String = "off"

    @OptionGroup var job: JobOptions
    @OptionGroup var api: APIOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let agents, !(1...64).contains(agents) { throw ValidationError("--agents must be from 1 to 64") }
        if self.input == nil, self.http == "off" {
            throw ValidationError("give the video to transcode, or --http HOST:PORT to serve the API on this farm")
        }
        if self.input != nil, self.output == nil { throw ValidationError("give the output folder: -o FOLDER") }
    }

    func run() async throws {
        let logger = self.logging.makeLogger(label: "farm", defaultLevel: .warning)
        var job: TranscodeDriver.Job?
        if let input, let output {
            let outputDirectory = URL(fileURLWithPath: output).standardizedFileURL.path
            job = TranscodeDriver.Job(
                source: try resolveInput(input),
                outputDirectory: outputDirectory,
                settings: try self.job.settings()
            )
            try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        }
        let agents: Int
        if let chosen = self.agents {
            agents = chosen
        } else {
            let advice = SlotAdvice.forThisMachine()
            agents = advice.slots
            FileHandle.standardError.write(Data("using \(agents) local agents: \(advice.reason)\n".utf8))
        }

        var managed: LocalPostgres?
        let url: DatabaseURL
        if let databaseURL {
            url = try DatabaseURL(databaseURL)
        } else {
            let local = LocalPostgres()
            FileHandle.standardError.write(Data("starting the managed PostgreSQL in \(local.stateDirectory)\n".utf8))
            if try local.start() { managed = local }
            url = local.url
        }
        defer { managed?.stop() }

        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        let farm = AllInOneFarm(
            client: client,
            configuration: AllInOneFarm.Configuration(agents: agents),
            logger: logger
        )
        let driver = TranscodeDriver(farm: farm, job: job, servesAPI: self.http != "off")
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: client)]
        if self.http != "off" {
            let host = try parseAddress(self.http, defaultPort: 8080).host
            let api = try self.api.services(
                address: self.http,
                client: client,
                secret: farm.configuration.coordinator.secret,
                logger: logger,
                onListening: { port in
                    let shown = host == "0.0.0.0" ? "127.0.0.1" : host
                    FileHandle.standardError.write(Data("farm: HTTP API at http://\(shown):\(port)/\n".utf8))
                }
            )
            services += api.map { .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) }
        }
        services.append(
            .init(
                service: driver,
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup
            )
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            FileHandle.standardError.write(Data("farm: transcode failed: \(readable(error))\n".utf8))
            throw ExitCode.failure
        }
        guard let outcome = driver.outcome.withLock({ $0 }) else { throw ExitCode.failure }
        switch outcome {
        case .success(let summary):
            print(summary)
        case .failure(let message):
            FileHandle.standardError.write(Data("farm: transcode failed: \(message)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// Runs the all-in-one farm, submits the job and follows it; ends the service group when the job ends. Serving the
/// API, it makes a key of tenant `local` first, whose job the given one is; with no job, it runs until shut down.
final class TranscodeDriver: Service, Sendable {
    struct Job: Sendable {
        var source: String
        var outputDirectory: String
        var settings: JobSettings
    }

    enum Outcome: Sendable {
        case success(String)
        case failure(String)
    }

    static let localTenant = "local"

    let farm: AllInOneFarm
    let job: Job?
    let servesAPI: Bool
    let outcome = Mutex<Outcome?>(nil)

    init(farm: AllInOneFarm, job: Job?, servesAPI: Bool) {
        self.farm = farm
        self.job = job
        self.servesAPI = servesAPI
    }

    func run() async throws {
        let started = ContinuousClock.now
        let outcome = try await self.farm.run { running -> Outcome in
            if self.servesAPI {
                // The coordinator listens once it has migrated the database, so the key's table is there.
                let (_, key) = try await APIKeyStore(client: running.store.client, logger: running.store.logger)
                    .create(tenant: Self.localTenant)
                FileHandle.standardError.write(
                    Data(
                        "farm: API key of tenant \(Self.localTenant) (valid while this database lasts): \(key.text)\n"
                            .utf8
                    )
                )
            }
            guard let job = self.job else {
                try await gracefulShutdown()
                return .success("farm: stopped")
            }
            let jobID = try await running.store.submit(
                source: job.source,
                outputDirectory: job.outputDirectory,
                settings: job.settings,
                tenant: self.servesAPI ? Self.localTenant : nil
            )
            if self.servesAPI {
                FileHandle.standardError.write(Data("farm: job \(jobID), at /v1/jobs/\(jobID) of the API\n".utf8))
            }
            let status = try await cancelWhenGracefulShutdown {
                try await JobProgress(store: running.store, jobID: jobID).follow()
            }
            guard status.state == .ready else {
                return .failure("job \(jobID) \(status.state): \(status.error ?? "no error recorded")")
            }
            return .success(
                OutputSummary.describe(
                    outputDirectory: job.outputDirectory,
                    wallSeconds: (ContinuousClock.now - started).seconds,
                    mediaSeconds: status.durationSeconds
                )
            )
        }
        self.outcome.withLock { $0 = outcome }
    }
}

struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run a coordinator: agents connect to it; jobs are submitted to its PostgreSQL."
    )

    @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Address agents connect to, HOST:PORT (port 0 picks a free one).")
    var listen: String = "0.0.0.0:7400"

    @Option(help: "Write the bound port to this file once listening.")
    var portFile: String?

    @Option(help: "Address of the HTTP API, HOST:PORT (port 0 picks a free one), or 'off'.")
    var http: String = "0.0.0.0:8080"

    @Option(help: "Seconds a lease lasts without a heartbeat.")
    var leaseSeconds: Double = 30

    @Option(help: "Seconds between agent heartbeats.")
    var heartbeatSeconds: Double = 5

    @Option(help: "Seconds between sweeps for expired leases.")
    var reapSeconds: Double = 5

    @OptionGroup var api: APIOptions
    @OptionGroup var secret: SecretOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard self.leaseSeconds >= 2, self.heartbeatSeconds > 0, self.heartbeatSeconds * 2 <= self.leaseSeconds else {
            throw ValidationError(
                "--heartbeat-seconds must be positive and at most half of --lease-seconds (at least 2)"
            )
        }
    }

    func run() async throws {
        let logger = self.logging.makeLogger(label: "farm.coordinator", defaultLevel: .info)
        let url = try resolveDatabaseURL(self.databaseURL)
        let (host, port) = try parseAddress(self.listen, defaultPort: 7400)
        let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
        let portFile = self.portFile
        let secret = try self.secret.resolve()
        let coordinator = CoordinatorService(
            client: client,
            configuration: CoordinatorConfiguration(
                host: host,
                port: port,
                secret: secret,
                leaseSeconds: self.leaseSeconds,
                heartbeatIntervalSeconds: self.heartbeatSeconds,
                reapIntervalSeconds: self.reapSeconds
            ),
            logger: logger,
            onListening: { port in
                if let portFile {
                    try? Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: portFile), options: .atomic)
                }
            }
        )
        var services: [any Service] = [client, coordinator]
        if self.http != "off" {
            services += try self.api.services(address: self.http, client: client, secret: secret, logger: logger)
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await withReadableErrors { try await group.run() }
    }
}

/// `farm keys`: the API keys upload services authenticate with.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make, list, limit and revoke API keys (one tenant per key; a key sees its tenant's jobs only).",
        subcommands: [Create.self, List.self, Limit.self, Revoke.self]
    )

    /// A key's own caps; where one is not given, the coordinator's `--key-max-…` default holds.
    struct CapOptions: ParsableArguments {
        @Option(help: "Jobs the key may have submitted or running at once (default: the coordinator's).")
        var maxJobsInFlight: Int?

        @Option(help: "Unfinished uploads the key may have at once (default: the coordinator's).")
        var maxUploads: Int?

        func validate() throws {
            guard self.maxJobsInFlight ?? 1 > 0, self.maxUploads ?? 1 > 0 else {
                throw ValidationError("--max-jobs-in-flight and --max-uploads must be positive")
            }
        }

        var caps: APIKeyCaps { APIKeyCaps(maxJobsInFlight: self.maxJobsInFlight, maxUploads: self.maxUploads) }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key for a tenant and print it (once).")

        @Option(help: "The tenant the key acts for: letters, digits, '-', '_' and '.'.")
        var tenant: String

        @OptionGroup var caps: CapOptions

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func validate() throws {
            guard (1...64).contains(self.tenant.count),
                self.tenant.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) })
            else {
                throw ValidationError("tenant '\(self.tenant)' must be 1 to 64 letters, digits, '-', '_' or '.'")
            }
        }

        func run() async throws {
            try await withKeyStore(self.databaseURL) { keys in
                let (id, key) = try await keys.create(tenant: self.tenant, caps: self.caps.caps)
                FileHandle.standardError.write(
                    Data("farm: key \(id) for tenant \(self.tenant); it is shown only now, keep it secret\n".utf8)
                )
                print(key.text)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List keys: id, tenant, prefix, made, revoked, caps of jobs in flight and open uploads."
        )

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await withKeyStore(self.databaseURL) { keys in
                let formatter = ISO8601DateFormatter()
                for key in try await keys.list() {
                    let revoked = key.revoked.map { "revoked " + formatter.string(from: $0) } ?? "live"
                    let jobs = key.caps.maxJobsInFlight.map { "\($0) jobs" } ?? "default jobs"
                    let uploads = key.caps.maxUploads.map { "\($0) uploads" } ?? "default uploads"
                    print(
                        "\(key.id)\t\(key.tenant)\t\(key.prefix)…\t\(formatter.string(from: key.created))\t\(revoked)"
                            + "\t\(jobs)\t\(uploads)"
                    )
                }
            }
        }
    }

    struct Limit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a key's caps; a cap not given goes back to the coordinator's default."
        )

        @Argument(help: "The key's id or prefix, as `farm keys list` shows them.")
        var key: String

        @OptionGroup var caps: CapOptions

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await withKeyStore(self.databaseURL) { keys in
                guard try await keys.setCaps(self.key, self.caps.caps) else {
                    throw ReadableError(description: "no live key \(self.key); `farm keys list` shows them")
                }
                FileHandle.standardError.write(Data("farm: key \(self.key)'s caps set\n".utf8))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: it is refused from now on.")

        @Argument(help: "The key's id or prefix, as `farm keys list` shows them.")
        var key: String

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await withKeyStore(self.databaseURL) { keys in
                guard try await keys.revoke(self.key) else {
                    throw ReadableError(description: "no live key \(self.key); `farm keys list` shows them")
                }
                FileHandle.standardError.write(Data("farm: key \(self.key) revoked\n".utf8))
            }
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run an encoding agent that takes work from a coordinator. SIGTERM drains it (finishes its task)."
    )

    @Option(help: "The coordinator's HOST:PORT.")
    var coordinator: String

    @Option(help: "This agent's name (default: the host name).")
    var name: String = ProcessInfo.processInfo.hostName

    @Option(help: "Tasks encoded at once (default: one per core, as many as memory holds).")
    var slots: Int?

    @Option(help: "Folder for tasks in progress.")
    var workDir: String = NSTemporaryDirectory()

    @Option(help: .hidden)
    var debugFrameDelayMs: Int?

    @Flag(help: .hidden)
    var debugIgnoreLeaseLoss = false

    @Option(help: .hidden)
    var debugCrashOnChunk: Int?

    @OptionGroup var secret: SecretOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let slots, !(1...64).contains(slots) { throw ValidationError("--slots must be from 1 to 64") }
    }

    func run() async throws {
        let logger = self.logging.makeLogger(label: "farm.agent", defaultLevel: .info)
        let (host, port) = try parseAddress(self.coordinator, defaultPort: 7400)
        let slots: Int
        if let chosen = self.slots {
            slots = chosen
            logger.info("slots as asked", metadata: ["slots": "\(chosen)"])
        } else {
            let advice = SlotAdvice.forThisMachine()
            slots = advice.slots
            logger.info("\(slots) slots: \(advice.reason)", metadata: ["slots": "\(slots)"])
        }
        let agent = AgentService(
            configuration: AgentConfiguration(
                coordinatorHost: host,
                coordinatorPort: port,
                secret: try self.secret.resolve(),
                name: self.name,
                slots: slots,
                workDirectory: self.workDir,
                faultInjection: FaultInjection(
                    frameDelay: self.debugFrameDelayMs.map { .milliseconds($0) },
                    ignoreLeaseLoss: self.debugIgnoreLeaseLoss,
                    crashOnChunk: self.debugCrashOnChunk
                )
            ),
            logger: logger
        )
        // The agent returns once it has drained (asked by `farm agents drain`): the process exits 0.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch let error as AgentError {
            FileHandle.standardError.write(Data("farm agent: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a video (a path the coordinators can read) and print the job id."
    )

    @Argument(help: "The video to transcode.")
    var input: String

    @Option(
        name: [.short, .customLong("output")],
        help: "Output folder for the HLS ladder (readable by the coordinators)."
    )
    var output: String

    @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "Higher runs first.")
    var priority: Int = 0

    @Flag(help: "Wait for the job to end, showing progress; exit non-zero if it fails.")
    var wait = false

    @OptionGroup var job: JobOptions

    func run() async throws {
        let logger = Logger(label: "farm.submit")
        let source = try resolveInput(self.input)
        let settings = try self.job.settings()
        let outputDirectory = URL(fileURLWithPath: self.output).standardizedFileURL.path
        try await withJobStore(self.databaseURL, logger: logger, migrating: true) { store in
            let jobID = try await store.submit(
                source: source,
                outputDirectory: outputDirectory,
                settings: settings,
                priority: self.priority
            )
            print(jobID)
            guard self.wait else { return }
            let status = try await JobProgress(store: store, jobID: jobID).follow()
            guard status.state == .ready else {
                FileHandle.standardError.write(
                    Data("farm: job \(jobID) \(status.state): \(status.error ?? "")\n".utf8)
                )
                throw ExitCode.failure
            }
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a job's state.")

    @Argument(help: "The job id.")
    var job: Int64

    @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
    var databaseURL: String?

    func run() async throws {
        try await withJobStore(self.databaseURL, logger: Logger(label: "farm.status")) { store in
            guard let status = try await store.status(jobID: self.job) else {
                throw ReadableError(description: "job \(self.job) does not exist; check the id `farm submit` printed")
            }
            print("job \(status.id): \(status.state), tasks \(status.tasksDone)/\(status.tasksTotal)")
            if let error = status.error { print("error: \(error)") }
            print("output: \(status.outputDirectory)")
        }
    }
}

/// Runs `body` with a job store on the database named by `given` (or `$FARM_DATABASE_URL`), for the commands
/// that do one thing and exit; errors come out readable.
func withJobStore(
    _ given: String?,
    logger: Logger,
    migrating: Bool = false,
    _ body: @escaping @Sendable (JobStore) async throws -> Void
) async throws {
    try await withDatabase(given, logger: logger, migrating: migrating) { client, logger in
        try await body(JobStore(client: client, logger: logger))
    }
}

/// The API keys of the database, migrated first (a new farm's first command may be `farm keys create`).
func withKeyStore(_ given: String?, _ body: @escaping @Sendable (APIKeyStore) async throws -> Void) async throws {
    try await withDatabase(given, logger: Logger(label: "farm.keys"), migrating: true) { client, logger in
        try await body(APIKeyStore(client: client, logger: logger))
    }
}

func withDatabase(
    _ given: String?,
    logger: Logger,
    migrating: Bool,
    _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> Void
) async throws {
    let url = try resolveDatabaseURL(given)
    // Errors reach the user as the command's own message; the pool's start-up chatter is not for them.
    var logger = logger
    logger.logLevel = .error
    let client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: logger)
    try await withReadableErrors {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            if migrating { try await Migrations.migrate(client, logger: logger) }
            try await body(client, logger)
        }
    }
}

func resolveDatabaseURL(_ given: String?) throws -> DatabaseURL {
    guard let text = given ?? ProcessInfo.processInfo.environment["FARM_DATABASE_URL"], !text.isEmpty else {
        throw ValidationError("no database: pass --database-url postgres://user@host:port/db or set FARM_DATABASE_URL")
    }
    do {
        return try DatabaseURL(text)
    } catch {
        throw ValidationError("\(error)")
    }
}

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a job; the agents working on it are told to stop at once."
    )

    @Argument(help: "The job id.")
    var job: Int64

    @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
    var databaseURL: String?

    func run() async throws {
        try await withJobStore(self.databaseURL, logger: Logger(label: "farm.cancel")) { store in
            guard try await store.cancel(jobID: self.job) else {
                throw ReadableError(
                    description:
                        "job \(self.job) does not exist or has already ended; `farm status \(self.job)` shows its state"
                )
            }
            print("job \(self.job) cancelled")
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that an HLS output is a faithful transcode of its source.",
        discussion: """
            Decodes SOURCE and every rendition of HLS_DIR/master.m3u8 and checks: frame count and timestamps per \
            rendition, no gap or duplicate at segment seams, an IDR at every segment start with the same segment \
            starts in every rendition, the keyframe interval, audio duration and sync, the playlists' tags, \
            durations and bandwidths. Prints PSNR and SSIM per rung. Exits 0 when every check holds, 1 otherwise \
            with a line per failed check.
            """
    )

    @Argument(help: "The source video the output was made from.")
    var source: String

    @Argument(help: "The HLS output folder (holding master.m3u8).")
    var hlsDirectory: String

    @Option(help: "Largest allowed distance between consecutive keyframes of a rendition, in seconds.")
    var maxKeyframeInterval: Double = 2.0

    @Option(name: .customLong("min-psnr"), help: "Fail a rung whose PSNR-Y (dB) against the source is below this.")
    var minPSNR: Double?

    @Option(help: "Largest allowed difference of audio duration and of audio start against the video, in seconds.")
    var audioTolerance: Double = 0.05

    @Flag(help: "Skip PSNR/SSIM (faster; --min-psnr then cannot be used).")
    var noQuality = false

    func validate() throws {
        guard self.maxKeyframeInterval > 0 else { throw ValidationError("--max-keyframe-interval must be above 0") }
        guard self.audioTolerance >= 0 else { throw ValidationError("--audio-tolerance must be 0 or more") }
        if self.noQuality, self.minPSNR != nil { throw ValidationError("--min-psnr needs the quality measurement") }
    }

    func run() throws {
        let source = try resolveInput(self.source)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: self.hlsDirectory, isDirectory: &isDirectory),
            isDirectory.boolValue
        else {
            throw ValidationError("HLS_DIR \(self.hlsDirectory) is not a folder; pass the job's output folder")
        }
        let report = OutputVerifier.verify(
            source: source,
            hlsDirectory: self.hlsDirectory,
            options: VerificationOptions(
                maxKeyframeInterval: self.maxKeyframeInterval,
                minimumPSNR: self.minPSNR,
                measureQuality: !self.noQuality,
                audioTolerance: self.audioTolerance
            )
        )
        print(report.text)
        if !report.passed { throw ExitCode.failure }
    }
}
