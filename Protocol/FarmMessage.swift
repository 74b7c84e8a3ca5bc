import Foundation
import NIOCore

/// The version of the agent protocol this build speaks. A peer with another version is refused during the handshake.
/// 2: tasks carry the job's presentation delay (`TaskSpec.presentationDelay`), which an agent of version 1 would
/// ignore, making segments the stitch refuses.
public let farmProtocolVersion = 2

/// The farm build's version, as `farm --version` and `farm agents` show it.
public let farmVersion = "0.1.0"

/// One message of the agent protocol. On the wire every message is one frame (see `FarmFrameDecoder`) whose payload
/// is a one-byte kind, a 4-byte big-endian header length, the header as JSON, then raw body bytes. Only bulk data
/// (source bytes, segment bytes) has a body; it is never base64-encoded.
package enum FarmMessage: Sendable, Equatable {
    // Handshake.
    case hello(Hello)
    case challenge(Challenge)
    case authenticate(Authenticate)
    case welcome(Welcome)
    case refused(Refused)
    // Work.
    case leaseRequest
    case lease(Lease)
    case sourceData(ByteBuffer)
    case sourceEnd(SourceEnd)
    case heartbeat(Heartbeat)
    case heartbeatAck(HeartbeatAck)
    case segmentData(SegmentData, ByteBuffer)
    case taskComplete(TaskComplete)
    case taskFailed(TaskFailed)
    case resultAccepted(ResultVerdict)
    case resultRejected(ResultVerdict)
    case revoke(Revoke)
    case drain

    package enum Kind: UInt8, Sendable {
        case hello = 1
        case challenge = 2
        case authenticate = 3
        case welcome = 4
        case refused = 5
        case leaseRequest = 10
        case lease = 11
        case sourceData = 12
        case sourceEnd = 13
        case heartbeat = 14
        case heartbeatAck = 15
        case segmentData = 16
        case taskComplete = 17
        case taskFailed = 18
        case resultAccepted = 19
        case resultRejected = 20
        case revoke = 21
        case drain = 22
    }

    package var kind: Kind {
        switch self {
        case .hello: .hello
        case .challenge: .challenge
        case .authenticate: .authenticate
        case .welcome: .welcome
        case .refused: .refused
        case .leaseRequest: .leaseRequest
        case .lease: .lease
        case .sourceData: .sourceData
        case .sourceEnd: .sourceEnd
        case .heartbeat: .heartbeat
        case .heartbeatAck: .heartbeatAck
        case .segmentData: .segmentData
        case .taskComplete: .taskComplete
        case .taskFailed: .taskFailed
        case .resultAccepted: .resultAccepted
        case .resultRejected: .resultRejected
        case .revoke: .revoke
        case .drain: .drain
        }
    }
}

extension FarmMessage {
    package struct Hello: Codable, Sendable, Equatable {
        package var protocolVersion: Int
        package var agentName: String
        package init(protocolVersion: Int = farmProtocolVersion, agentName: String) {
            self.protocolVersion = protocolVersion
            self.agentName = agentName
        }
    }

    package struct Challenge: Codable, Sendable, Equatable {
        /// Hex-encoded random bytes chosen by the coordinator for this connection only.
        package var nonce: String
        package init(nonce: String) { self.nonce = nonce }
    }

    package struct Capabilities: Codable, Sendable, Equatable {
        package var encoders: [String]
        /// The VA-API render node the agent can use, or nil when it encodes on the CPU only.
        package var vaapiDevice: String?
        package var slots: Int
        /// Why the agent has no VA-API device, as its start-up check found (`farm agents` shows it).
        package var vaapiUnavailableReason: String?
        /// The machine's cores.
        package var cpuCount: Int?
        /// The farm build the agent runs.
        package var version: String?
        /// Random per agent process, the same on each of its slots' connections: a second process that takes the
        /// name of one still connected is refused. (Absent from agents older than it: never refused.)
        package var instance: String?

        package init(
            encoders: [String],
            vaapiDevice: String?,
            slots: Int,
            vaapiUnavailableReason: String? = nil,
            cpuCount: Int? = nil,
            version: String? = nil,
            instance: String? = nil
        ) {
            self.encoders = encoders
            self.vaapiDevice = vaapiDevice
            self.slots = slots
            self.vaapiUnavailableReason = vaapiUnavailableReason
            self.cpuCount = cpuCount
            self.version = version
            self.instance = instance
        }
    }

    package struct Authenticate: Codable, Sendable, Equatable {
        /// Hex HMAC-SHA256 of the challenge, see `ClusterSecret.proof(nonce:agentName:)`.
        package var proof: String
        package var capabilities: Capabilities
        package init(proof: String, capabilities: Capabilities) {
            self.proof = proof
            self.capabilities = capabilities
        }
    }

    package struct Welcome: Codable, Sendable, Equatable {
        package var agentID: Int64
        package var heartbeatIntervalSeconds: Double
        package init(agentID: Int64, heartbeatIntervalSeconds: Double) {
            self.agentID = agentID
            self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        }
    }

    package struct Refused: Codable, Sendable, Equatable {
        package var reason: String
        package init(reason: String) { self.reason = reason }
    }

    package struct Lease: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        package var leaseSeconds: Double
        package var spec: TaskSpec
        /// Size of the source container that follows in `sourceData` frames, closed by `sourceEnd`.
        package var sourceBytes: Int64
        package init(taskID: Int64, token: Int64, leaseSeconds: Double, spec: TaskSpec, sourceBytes: Int64) {
            self.taskID = taskID
            self.token = token
            self.leaseSeconds = leaseSeconds
            self.spec = spec
            self.sourceBytes = sourceBytes
        }
    }

    package struct SourceEnd: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var sha256: String
        package init(taskID: Int64, sha256: String) {
            self.taskID = taskID
            self.sha256 = sha256
        }
    }

    package struct Heartbeat: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        /// Fraction of the task done, 0...1.
        package var progress: Double
        package init(taskID: Int64, token: Int64, progress: Double) {
            self.taskID = taskID
            self.token = token
            self.progress = progress
        }
    }

    package struct HeartbeatAck: Codable, Sendable, Equatable {
        package var taskID: Int64
        /// False when the lease is no longer this agent's: it must stop working on the task.
        package var leaseHeld: Bool
        package init(taskID: Int64, leaseHeld: Bool) {
            self.taskID = taskID
            self.leaseHeld = leaseHeld
        }
    }

    /// A piece of one output file (a segment or an init segment). Large files are sent in several pieces.
    package struct SegmentData: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        /// The output file, relative to the job's output folder, for example `360p/segment_00003.m4s`.
        package var path: String
        package var offset: Int64
        package init(taskID: Int64, token: Int64, path: String, offset: Int64) {
            self.taskID = taskID
            self.token = token
            self.path = path
            self.offset = offset
        }
    }

    package struct TaskComplete: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        package var outputs: [OutputFile]
        package init(taskID: Int64, token: Int64, outputs: [OutputFile]) {
            self.taskID = taskID
            self.token = token
            self.outputs = outputs
        }
    }

    package struct TaskFailed: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        package var message: String
        /// False when the input itself is bad, so a retry cannot help.
        package var retryable: Bool
        package init(taskID: Int64, token: Int64, message: String, retryable: Bool) {
            self.taskID = taskID
            self.token = token
            self.message = message
            self.retryable = retryable
        }
    }

    package struct ResultVerdict: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var token: Int64
        package var reason: String?
        package init(taskID: Int64, token: Int64, reason: String? = nil) {
            self.taskID = taskID
            self.token = token
            self.reason = reason
        }
    }

    package struct Revoke: Codable, Sendable, Equatable {
        package var taskID: Int64
        package var reason: String
        package init(taskID: Int64, reason: String) {
            self.taskID = taskID
            self.reason = reason
        }
    }
}

/// One file a task produced, as reported in `taskComplete`.
package struct OutputFile: Codable, Sendable, Equatable {
    package enum Role: String, Codable, Sendable {
        case initSegment = "init"
        case segment
    }

    package var rendition: String
    package var role: Role
    /// Global segment number within the rendition; nil for an init segment.
    package var segmentIndex: Int?
    package var path: String
    package var bytes: Int64
    package var sha256: String
    /// Presentation start and duration in `timeBase` units; zero for an init segment.
    package var startPTS: Int64
    package var duration: Int64
    package var frames: Int
    package var timeBase: Rational

    package init(
        rendition: String,
        role: Role,
        segmentIndex: Int?,
        path: String,
        bytes: Int64,
        sha256: String,
        startPTS: Int64,
        duration: Int64,
        frames: Int,
        timeBase: Rational
    ) {
        self.rendition = rendition
        self.role = role
        self.segmentIndex = segmentIndex
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
        self.startPTS = startPTS
        self.duration = duration
        self.frames = frames
        self.timeBase = timeBase
    }
}
