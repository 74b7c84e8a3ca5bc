import FarmCoordinator
import Foundation
import Hummingbird
import Logging
import PostgresNIO

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
    /// How long an upload lasts, in seconds (and after the job made from it ends, at least until then).
    package var uploadLifetime: Double
    /// Signs playback URLs; nil: a key of this process alone (`farm coordinator` passes the cluster secret's).
    package var playbackSigner: PlaybackSigner?

    package init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        sourceFolders: [String] = [],
        outputRoot: String,
        uploadFolder: String? = nil,
        maximumUploadSize: Int64 = 100 << 30,
        uploadLifetime: Double = 24 * 3600,
        playbackSigner: PlaybackSigner? = nil
    ) {
        self.host = host
        self.port = port
        self.sourceFolders = sourceFolders
        self.outputRoot = outputRoot
        self.uploadFolder = uploadFolder ?? (outputRoot as NSString).appendingPathComponent(".uploads")
        self.maximumUploadSize = maximumUploadSize
        self.uploadLifetime = uploadLifetime
        self.playbackSigner = playbackSigner
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
            outputRoot: configuration.outputRoot
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
        let jobOperations = jobs.addRoutes(to: router.group("v1/jobs").add(middleware: keys))
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

    /// The API as a service (run it in the coordinator's service group beside its `PostgresClient`).
    package static func application(
        client: PostgresClient,
        configuration: APIConfiguration,
        logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: try self.router(client: client, configuration: configuration, logger: logger).router,
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
