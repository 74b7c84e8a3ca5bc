import ArgumentParser
import FarmAPI
import FarmCoordinator
import FarmProtocol
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The HTTP API's options, shared by `farm coordinator` and `farm transcode --http` (docs/api.md).
struct APIOptions: ParsableArguments {
    @Option(help: "Write the HTTP API's bound port to this file once listening.")
    var httpPortFile: String?

    @Option(help: "A folder API clients may name source files in (repeat for several; default: none).")
    var sourceFolder: [String] = []

    @Option(help: "Where jobs submitted through the API write their outputs, a folder per job.")
    var outputRoot: String = "farm-outputs"

    @Option(
        help:
            "Where tus uploads are stored (default: .uploads in --output-root); coordinators sharing uploads share it."
    )
    var uploadFolder: String?

    @Option(help: "The largest upload an API key may make, in bytes.")
    var maxUploadSize: Int64 = 100 << 30

    @Option(help: "Hours an upload lasts (an unfinished one is then removed; a job's source once the job has ended).")
    var uploadHours: Double = 24

    @Option(
        help: ArgumentHelp(
            "A network (CIDR, or one address) inside this coordinator's own that API clients may still name in source "
                + "and webhook URLs, e.g. 10.1.2.0/24 for an internal media server (repeat for several; default: none)."
        )
    )
    var allowUrlNetwork: [String] = []

    @Option(help: "Minutes a source fetched from a URL may take.")
    var fetchMinutes: Double = 60

    @Option(help: "Seconds before the first retry of a webhook that failed (each next one waits twice as long).")
    var webhookRetrySeconds: Double = 10

    @Option(help: .hidden)
    var eventHeartbeatSeconds: Double = 15

    @Option(help: "Jobs an API key may have submitted or running at once, unless `farm keys limit` set its own.")
    var keyMaxJobsInFlight: Int = APIKeyLimits.standard.maxJobsInFlight

    @Option(help: "Unfinished uploads an API key may have at once, unless `farm keys limit` set its own.")
    var keyMaxUploads: Int = APIKeyLimits.standard.maxUploads

    func validate() throws {
        guard self.maxUploadSize > 0, self.uploadHours > 0 else {
            throw ValidationError("--max-upload-size and --upload-hours must be positive")
        }
        guard self.fetchMinutes > 0, self.webhookRetrySeconds > 0, self.eventHeartbeatSeconds > 0 else {
            throw ValidationError("--fetch-minutes and --webhook-retry-seconds must be positive")
        }
        guard self.keyMaxJobsInFlight > 0, self.keyMaxUploads > 0 else {
            throw ValidationError("--key-max-jobs-in-flight and --key-max-uploads must be positive")
        }
        if let bad = self.allowUrlNetwork.first(where: { IPNetwork($0) == nil }) {
            throw ValidationError("--allow-url-network \(bad) is not a network: give one like 10.1.2.0/24 or fd00::/8")
        }
    }

    /// The API's services at `address` (`HOST:PORT`), to run after `client` in the command's service group.
    func services(
        address: String,
        client: PostgresClient,
        secret: ClusterSecret,
        logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws -> [any Service] {
        let (host, port) = try parseAddress(address, defaultPort: 8080)
        let httpPortFile = self.httpPortFile
        return try APIApplication.services(
            client: client,
            configuration: APIConfiguration(
                host: host,
                port: port,
                sourceFolders: self.sourceFolder,
                outputRoot: URL(fileURLWithPath: self.outputRoot).standardizedFileURL.path,
                uploadFolder: self.uploadFolder.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                maximumUploadSize: self.maxUploadSize,
                uploadLifetime: self.uploadHours * 3600,
                outbound: OutboundURLPolicy(allowedNetworks: self.allowUrlNetwork.compactMap(IPNetwork.init)),
                fetchTimeout: .seconds(configured: self.fetchMinutes * 60),
                webhookRetries: WebhookRetries(firstWait: self.webhookRetrySeconds),
                eventHeartbeat: .seconds(configured: self.eventHeartbeatSeconds),
                playbackSigner: PlaybackSigner(clusterSecret: secret),
                keyLimits: APIKeyLimits(maxJobsInFlight: self.keyMaxJobsInFlight, maxUploads: self.keyMaxUploads)
            ),
            logger: logger,
            onListening: { port in
                if let httpPortFile {
                    try? Data("\(port)\n".utf8).write(to: URL(fileURLWithPath: httpPortFile), options: .atomic)
                }
                onListening(port)
            }
        )
    }
}
