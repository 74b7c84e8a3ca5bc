import AsyncHTTPClient
import FarmCoordinator
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// Where the HTTP API listens and what it may touch.
package struct APIConfiguration: Sendable {
    package var host: String
    package var port: Int
    /// Folders API clients may name sources in (`SourceFolders`); none by default.
    package var sourceFolders: [String]
    /// Where API jobs' outputs go, a new folder per job.
    package var outputRoot: String
    /// Where tus uploads are stored, a file each (made if missing).
    package var uploadFolder: String
    /// The largest upload, in bytes.
    package var maximumUploadSize: Int64
    /// How long an upload lasts, in seconds (and after the job made from it ends, at least until then); also how
    /// long a source fetched from a URL is kept after its job ends.
    package var uploadLifetime: Double
    /// Which URLs clients may give as sources and webhooks (by default none inside the coordinator's networks).
    package var outbound: OutboundURLPolicy
    /// The longest a whole source fetch may take.
    package var fetchTimeout: Duration
    package var webhookRetries: WebhookRetries
    /// The longest an event stream stays silent before a heartbeat comment.
    package var eventHeartbeat: Duration
    /// Signs playback URLs; nil: a key of this process alone (`farm coordinator` passes the cluster secret's).
    package var playbackSigner: PlaybackSigner?
    /// The caps of a key that has none of its own.
    package var keyLimits: APIKeyLimits

    package init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        sourceFolders: [String] = [],
        outputRoot: String,
        uploadFolder: String? = nil,
        maximumUploadSize: Int64 = 100 << 30,
        uploadLifetime: Double = 24 * 3600,
        outbound: OutboundURLPolicy = OutboundURLPolicy(),
        fetchTimeout: Duration = .seconds(3600),
        webhookRetries: WebhookRetries = WebhookRetries(),
        eventHeartbeat: Duration = .seconds(15),
        playbackSigner: PlaybackSigner? = nil,
        keyLimits: APIKeyLimits = .standard
    ) {
        self.host = host
        self.port = port
        self.sourceFolders = sourceFolders
        self.outputRoot = outputRoot
        self.uploadFolder = uploadFolder ?? (outputRoot as NSString).appendingPathComponent(".uploads")
        self.maximumUploadSize = maximumUploadSize
        self.uploadLifetime = uploadLifetime
        self.outbound = outbound
        self.fetchTimeout = fetchTimeout
        self.webhookRetries = webhookRetries
        self.eventHeartbeat = eventHeartbeat
        self.playbackSigner = playbackSigner
        self.keyLimits = keyLimits
    }
}

/// The coordinator's HTTP API (docs/api.md, docs/openapi.yaml): health and readiness, the OpenAPI document, the
/// tenants' jobs behind their API keys, and the HLS origin behind signed URLs. Used by `farm coordinator --http` and
/// by the tests.
package enum APIApplication {
    /// The routes, and their operations as docs/openapi.yaml names them (`APIDocumentTests` holds the two to each
    /// other: each operation added here is listed beside the line that adds it).
    package static func router(
        client: PostgresClient,
        configuration: APIConfiguration,
        signals: APISignals = APISignals(),
        logger: Logger
    ) throws -> (router: Router<APIRequestContext>, operations: Set<String>) {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        router.get("healthz") { _, _ in try JobsController.json(["status": "ok"]) }
        router.get("readyz") { _, _ in try await Self.readiness(client: client, logger: logger) }
        let document = try OpenAPIDocument.json()
        router.get("openapi.json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(data: document))
            )
        }
        let jobs = JobsController(
            store: JobStore(client: client, logger: logger),
            sources: try SourceFolders(configuration.sourceFolders),
            outputRoot: configuration.outputRoot,
            fetchFolder: configuration.uploadFolder,
            outbound: configuration.outbound,
            keyLimits: configuration.keyLimits
        )
        let events = JobEventsController(
            store: JobStore(client: client, logger: logger),
            signals: signals,
            heartbeat: configuration.eventHeartbeat
        )
        try FileManager.default.createDirectory(atPath: configuration.uploadFolder, withIntermediateDirectories: true)
        let uploads = UploadsController(
            store: JobStore(client: client, logger: logger),
            jobs: jobs,
            folder: configuration.uploadFolder,
            maximumSize: configuration.maximumUploadSize,
            lifetime: configuration.uploadLifetime
        )
        let keys = APIKeyAuthenticator(keys: APIKeyStore(client: client, logger: logger))
        let jobRoutes = router.group("v1/jobs").add(middleware: keys)
        let jobOperations = jobs.addRoutes(to: jobRoutes) + events.addRoutes(to: jobRoutes)
        let uploadOperations = uploads.addRoutes(
            to: router.group("v1/uploads").add(middleware: TusResumableMiddleware()).add(middleware: keys)
        )
        let signer =
            configuration.playbackSigner
            ?? {
                let warning =
                    "playback URLs are signed with a key of this process: without a cluster secret they work only on "
                    + "this coordinator, until it stops"
                logger.warning("\(warning)")
                return PlaybackSigner.random()
            }()
        let origin = OriginController(store: JobStore(client: client, logger: logger), signer: signer)
        // The files answer to the URL's signature alone: their group has no key middleware.
        let originOperations = origin.addRoutes(
            keyed: router.group("v1/jobs").add(middleware: keys),
            signed: router.group("v1/jobs")
        )
        return (
            router,
            Set(
                ["GET /healthz", "GET /readyz", "GET /openapi.json"] + jobOperations + uploadOperations
                    + originOperations
            )
        )
    }

    /// The API as services, to run in the coordinator's service group after its `PostgresClient`: the HTTP
    /// server, the listener of the API's notifications, the source fetcher and the webhook sender (and the HTTP
    /// client these two share, shut down last).
    package static func services(
        client: PostgresClient,
        configuration: APIConfiguration,
        logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> [any Service] {
        let signals = APISignals()
        let store = JobStore(client: client, logger: logger)
        let http = OutboundHTTPClient()
        return [
            http,
            APINotificationListener(client: client, signals: signals, logger: logger),
            SourceFetcher(
                store: store,
                http: http.client,
                policy: configuration.outbound,
                signal: signals.fetches,
                limits: SourceFetchLimits(
                    maximumSize: configuration.maximumUploadSize,
                    timeout: configuration.fetchTimeout,
                    lifetime: configuration.uploadLifetime
                ),
                logger: logger
            ),
            WebhookSender(
                store: store,
                http: http.client,
                policy: configuration.outbound,
                signal: signals.webhooks,
                retries: configuration.webhookRetries,
                logger: logger
            ),
            try self.application(
                client: client,
                configuration: configuration,
                signals: signals,
                logger: logger,
                onListening: onListening
            ),
        ]
    }

    /// The HTTP server alone (the tests' server: its streams wake on `signals` only).
    package static func application(
        client: PostgresClient,
        configuration: APIConfiguration,
        signals: APISignals = APISignals(),
        logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: try self.router(client: client, configuration: configuration, signals: signals, logger: logger)
                .router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "farm"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                logger.info("HTTP API listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
                onListening(port)
            },
            logger: logger
        )
    }

    /// 200 when the database answers and its schema is this build's; otherwise 503 saying which.
    static func readiness(client: PostgresClient, logger: Logger) async throws -> Response {
        let current: Bool
        do {
            current = try await Migrations.isCurrent(client, logger: logger)
        } catch {
            throw Problem(
                .serviceUnavailable,
                "Database unreachable",
                detail: "the coordinator cannot query PostgreSQL; check the database and --database-url"
            )
        }
        guard current else {
            throw Problem(
                .serviceUnavailable,
                "Database schema not current",
                detail: "the database's migrations differ from this coordinator's; wait for the migration to end, "
                    + "or run the same farm version on every coordinator"
            )
        }
        return try JobsController.json(["status": "ready"])
    }
}

/// The HTTP client that fetches sources and sends webhooks: redirects are followed by the fetcher itself (each
/// checked against the outbound policy), never by the client; shut down when the service group ends.
final class OutboundHTTPClient: Service, Sendable {
    let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(10), read: .seconds(30))
        )
    )

    func run() async throws {
        try? await gracefulShutdown()
        try await self.client.shutdown()
    }
}
