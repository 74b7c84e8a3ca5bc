import FarmProtocol
import Foundation

public struct AgentConfiguration: Sendable {
    public var coordinatorHost: String
    public var coordinatorPort: Int
    public var secret: ClusterSecret
    /// This agent's name in the farm (letters, digits, '.', '_', '-').
    public var name: String
    /// Tasks encoded at once; each slot has its own connection.
    public var slots: Int
    /// Where sources and outputs of tasks in progress are kept; emptied as tasks end.
    public var workDirectory: String
    public var maximumFrameLength: Int
    /// Longest wait between reconnection attempts.
    public var maximumReconnectDelay: Duration
    public var faultInjection: FaultInjection

    public init(
        coordinatorHost: String,
        coordinatorPort: Int,
        secret: ClusterSecret,
        name: String,
        slots: Int = 1,
        workDirectory: String = NSTemporaryDirectory(),
        maximumFrameLength: Int = farmDefaultMaximumFrameLength,
        maximumReconnectDelay: Duration = .seconds(10),
        faultInjection: FaultInjection = FaultInjection()
    ) {
        self.coordinatorHost = coordinatorHost
        self.coordinatorPort = coordinatorPort
        self.secret = secret
        self.name = name
        self.slots = slots
        self.workDirectory = workDirectory
        self.maximumFrameLength = maximumFrameLength
        self.maximumReconnectDelay = maximumReconnectDelay
        self.faultInjection = faultInjection
    }
}

/// Misbehaviours for fault-injection tests, off by default: they let a test make a real agent process slow, deaf
/// to lease loss, or crash, so the coordinator's defences are what gets tested. None changes an output byte.
public struct FaultInjection: Sendable {
    /// Sleep this long after each encoded frame.
    public var frameDelay: Duration?
    /// Keep working and report the result after losing the lease (an agent cut off or paused too long).
    public var ignoreLeaseLoss: Bool
    /// Kill this process (SIGKILL) when a task for this chunk index starts.
    public var crashOnChunk: Int?

    public init(frameDelay: Duration? = nil, ignoreLeaseLoss: Bool = false, crashOnChunk: Int? = nil) {
        self.frameDelay = frameDelay
        self.ignoreLeaseLoss = ignoreLeaseLoss
        self.crashOnChunk = crashOnChunk
    }
}

/// Why an agent stopped for good (as opposed to a connection it retries).
public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
