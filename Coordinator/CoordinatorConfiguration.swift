import FarmProtocol
import Foundation

/// How a coordinator runs. Defaults suit a small farm; every value can be set from `farm coordinator`.
public struct CoordinatorConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; `CoordinatorService.onListening` tells which.
    public var port: Int
    public var secret: ClusterSecret
    /// How long a lease lasts without a heartbeat.
    public var leaseSeconds: Double
    /// How often agents heartbeat; a few heartbeats fit in one lease.
    public var heartbeatIntervalSeconds: Double
    /// How often expired leases are looked for.
    public var reapIntervalSeconds: Double
    /// How long idle sessions, the planner and the stitcher wait for a notification before they look for work anyway
    /// (work that becomes due on the clock, such as a retry's backoff ending). New work wakes them at once.
    public var pollIntervalSeconds: Double
    public var maximumFrameLength: Int
    /// Where chunk sources are prepared before they are sent.
    public var scratchDirectory: String
    /// This coordinator's name in logs and in the agents table.
    public var name: String

    public init(
        host: String = "127.0.0.1",
        port: Int = 7400,
        secret: ClusterSecret,
        leaseSeconds: Double = 30,
        heartbeatIntervalSeconds: Double = 5,
        reapIntervalSeconds: Double = 5,
        pollIntervalSeconds: Double = 2,
        maximumFrameLength: Int = farmDefaultMaximumFrameLength,
        scratchDirectory: String = NSTemporaryDirectory(),
        name: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    ) {
        self.host = host
        self.port = port
        self.secret = secret
        self.leaseSeconds = leaseSeconds
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.reapIntervalSeconds = reapIntervalSeconds
        self.pollIntervalSeconds = pollIntervalSeconds
        self.maximumFrameLength = maximumFrameLength
        self.scratchDirectory = scratchDirectory
        self.name = name
    }
}
