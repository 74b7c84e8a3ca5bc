import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import PostgresNIO

/// The container of a job's segments.
public enum SegmentContainer: String, Codable, Sendable, CaseIterable {
    /// CMAF fragmented MP4: `init.mp4` and `.m4s` segments (HLS version 7). The default.
    case fmp4
    /// MPEG-TS `.ts` segments, for players that predate fMP4 in HLS.
    case ts
}

/// What a submitter chooses for a job. Stored as JSON in `jobs.settings`.
public struct JobSettings: Codable, Sendable {
    /// Target segment duration in seconds.
    public var segmentDuration: Double
    /// Rung names to produce (never above the source height); nil for the whole default ladder.
    public var rungs: [String]?
    public var encoder: EncoderSettings
    /// Minimum chunk count, when the video has that many segments. The encode cost bounds a chunk's length
    /// (`WorkPlanner.maximumChunkFrames`), which cuts long and costly jobs finer than this; the floor matters for
    /// short or cheap jobs, which it still spreads over several agents.
    public var minimumChunks: Int
    public var maxAttempts: Int
    /// At most this many of the job's tasks are leased at once (0: no cap), so one long video cannot take every
    /// agent while other jobs wait.
    public var maxInFlight: Int
    public var container: SegmentContainer
    /// The first this many segments are chunks of one segment each, leased before the rest, so a running job is
    /// playable sooner (`WorkPlanner.openingSegments`); 0 cuts every chunk by cost alone.
    public var openingChunks: Int

    public init(
        segmentDuration: Double = 6,
        rungs: [String]? = nil,
        encoder: EncoderSettings = .default,
        minimumChunks: Int = 4,
        maxAttempts: Int = 5,
        maxInFlight: Int = 0,
        container: SegmentContainer = .fmp4,
        openingChunks: Int = WorkPlanner.openingSegments
    ) {
        self.segmentDuration = segmentDuration
        self.rungs = rungs
        self.encoder = encoder
        // MPEG-TS segments are remuxed from fMP4 ones whose B-frames would present before they decode (negative
        // composition offsets), which MPEG-TS cannot carry without shifting every decode time: no B-frames there.
        if container == .ts { self.encoder.bFrames = 0 }
        self.minimumChunks = minimumChunks
        self.maxAttempts = maxAttempts
        self.maxInFlight = maxInFlight
        self.container = container
        self.openingChunks = openingChunks
    }

    private enum CodingKeys: String, CodingKey {
        case segmentDuration, rungs, encoder, minimumChunks, maxAttempts, maxInFlight, container, openingChunks
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.segmentDuration = try container.decode(Double.self, forKey: .segmentDuration)
        self.rungs = try container.decodeIfPresent([String].self, forKey: .rungs)
        self.encoder = try container.decode(EncoderSettings.self, forKey: .encoder)
        self.minimumChunks = try container.decode(Int.self, forKey: .minimumChunks)
        self.maxAttempts = try container.decode(Int.self, forKey: .maxAttempts)
        self.maxInFlight = try container.decodeIfPresent(Int.self, forKey: .maxInFlight) ?? 0
        // Jobs stored before the setting existed are fMP4.
        self.container = try container.decodeIfPresent(SegmentContainer.self, forKey: .container) ?? .fmp4
        // Jobs stored before the setting existed are planned as they were then.
        self.openingChunks = try container.decodeIfPresent(Int.self, forKey: .openingChunks) ?? 0
    }

    /// libx264's presets, fastest first (`placebo` left out: hours per minute of video for no visible gain).
    public static let presets = [
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
    ]

    /// Checks values a user can get wrong, naming the bad one.
    public func validate() throws {
        guard self.segmentDuration >= 1, self.segmentDuration <= 60 else {
            throw ConfigurationError("segment duration \(self.segmentDuration) s is out of range: use 1 to 60 seconds")
        }
        guard self.minimumChunks >= 1, self.minimumChunks <= 10_000 else {
            throw ConfigurationError("minimum chunk count \(self.minimumChunks) is out of range: use 1 to 10000")
        }
        guard self.maxAttempts >= 1, self.maxAttempts <= 100 else {
            throw ConfigurationError("max attempts \(self.maxAttempts) is out of range: use 1 to 100")
        }
        guard (0...1000).contains(self.openingChunks) else {
            throw ConfigurationError("opening chunk count \(self.openingChunks) is out of range: use 0 to 1000")
        }
        guard self.maxInFlight >= 0 else {
            throw ConfigurationError("max in-flight tasks \(self.maxInFlight) is negative: use 0 for no cap")
        }
        guard Self.presets.contains(self.encoder.preset) else {
            throw ConfigurationError(
                "preset \(self.encoder.preset) is not one of libx264's; use one of \(Self.presets.joined(separator: ", "))"
            )
        }
        guard (0...51).contains(self.encoder.crf) else {
            throw ConfigurationError("CRF \(self.encoder.crf) is out of range: use 0 to 51")
        }
        guard (0...16).contains(self.encoder.bFrames) else {
            throw ConfigurationError("B-frames \(self.encoder.bFrames) is out of range: use 0 (none) to 16")
        }
        guard (1...64).contains(self.encoder.threads) else {
            throw ConfigurationError("encoder threads \(self.encoder.threads) is out of range: use 1 to 64")
        }
        if let rungs { _ = try Ladder.rungs(named: rungs) }
    }
}

/// What the planner learned of the source, stored as JSON in `jobs.source_info` for the stitcher.
package struct JobSourceInfo: Codable, Sendable {
    package var timeBase: Rational
    package var frameRate: Rational
    package var originPTS: Int64
    package var frameCount: Int
    package var segmentCount: Int
    package var durationSeconds: Double
    package var hasAudio: Bool
    package var videoCodec: String
    /// How long the audio rendition must last: from the first video frame (audio before it is cut, a late start
    /// padded with silence) to the end of the source's audio. Nil for jobs planned before it was recorded.
    package var audioDurationSeconds: Double? = nil
    /// TARGETDURATION of the video's media playlists from the planned segment durations: the job's EVENT playlists
    /// carry it from their first version. Nil for jobs planned before it was recorded (they publish at the end only).
    package var plannedTargetDuration: Int? = nil
    /// When the source's keyframes are shown, the first of each second (`ThumbnailPlan.keyframeTimes`): the
    /// thumbnails decode a keyframe or two per tile instead of a GOP. Nil for jobs planned before it was recorded
    /// (their tiles show the frames at their cues' starts).
    package var keyframesMS: [Int]? = nil
    /// How much later than its source time the output shows every picture and sound (`timeBase`), so that B-frames
    /// have no negative composition offset (`PresentationDelay`). Nil for jobs planned before it existed: their
    /// B-frames have negative offsets (`MP4Boxes.shiftCompositionOffsets`) and their segments show their first
    /// picture when it decodes.
    package var presentationDelay: Int64? = nil
    /// The B-frames in a row the job is encoded with when fewer than its settings ask for: a source with frames
    /// shown so long (a held slide) that more would delay the whole job past `PresentationDelay.longestSeconds`.
    /// Nil when as asked.
    package var bFrames: Int? = nil
}

/// Which source packets a task's agent receives. Stored as JSON in `tasks.extract`; never sent to agents.
package struct SourceExtract: Codable, Sendable {
    package var streamIndex: Int
    /// Decode-order packet range of a video chunk; nil for a whole stream (audio).
    package var firstPacket: Int?
    package var lastPacket: Int?
    /// Presentation timestamp of the keyframe a video chunk's decoding starts from; nil for audio (and for tasks
    /// planned before it was recorded, whose pre-roll was never before the job's first frame).
    package var prerollPTS: Int64?
    /// What names the video chunk's first packet (`firstPacket`), so the extractor seeks to it instead of counting
    /// packets from the start of the file. Nil for audio and for tasks planned before it was recorded: those read
    /// from the start.
    package var firstPacketIdentity: PacketIdentity? = nil
}

/// A task leased to an agent.
package struct LeasedTask: Sendable {
    package var taskID: Int64
    package var token: Int64
    package var jobID: Int64
    package var spec: TaskSpec
    package var extract: SourceExtract
    package var source: String
    package var outputDirectory: String
    package var attempts: Int
}

/// What became of a reported result.
package enum CompletionVerdict: Sendable, Equatable {
    /// Accepted now; the job has this many tasks left.
    case accepted(remainingTasks: Int)
    /// This very result was accepted before (a retried report): acknowledge, change nothing.
    case alreadyAccepted
    /// The token is not the task's current lease: another agent owns the task now, or it was given up.
    case stale(reason: String)
    /// The lease was current but the result cannot be used (its init segment differs from the one accepted for
    /// another chunk): nothing was written; the session counts a failed attempt.
    case refused(reason: String)
}

/// An enum stored in a text column: bound as a query parameter and decoded from a row as its raw value. Its
/// encoding cannot throw, so a case fits in any `PostgresQuery` literal, `try` or not.
public protocol PostgresTextEnum: RawRepresentable, PostgresNonThrowingEncodable, PostgresDecodable
where RawValue == String {}

extension PostgresTextEnum {
    public func encode<JSONEncoder: PostgresJSONEncoder>(
        into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>
    ) {
        self.rawValue.encode(into: &byteBuffer, context: context)
    }
}

/// A job's state: the values of `jobs.state`, a text column whose CHECK constraint lists them (migration 1 in
/// `Coordinator/Migrations.swift`).
public enum JobState: String, Sendable, CaseIterable, CustomStringConvertible, PostgresTextEnum {
    case submitted, running, stitching, ready, failed, cancelled

    /// Ready, failed or cancelled: the job changes no more, and its output folder is free for another job.
    public var isEnded: Bool {
        switch self {
        case .submitted, .running, .stitching: false
        case .ready, .failed, .cancelled: true
        }
    }

    public var description: String { self.rawValue }
}

/// A task's state: the values of `tasks.state`, a text column whose CHECK constraint lists them (migration 1 in
/// `Coordinator/Migrations.swift`).
package enum TaskState: String, Sendable, CaseIterable, CustomStringConvertible, PostgresTextEnum {
    case queued, leased, done, failed, cancelled

    /// Done, failed or cancelled: no agent works on the task any more (ending a job cancels its queued and leased
    /// tasks).
    package var isEnded: Bool {
        switch self {
        case .queued, .leased: false
        case .done, .failed, .cancelled: true
        }
    }

    package var description: String { self.rawValue }
}

/// An agent's state in the registry: the values of `agents.state`, a text column whose CHECK constraint lists them
/// (migration 1 in `Coordinator/Migrations.swift`). Today an agent is registered `active`; draining and gone are for
/// the operators' commands to come.
package enum AgentState: String, Sendable, CaseIterable, CustomStringConvertible, PostgresTextEnum {
    case active, draining, gone

    package var description: String { self.rawValue }
}

/// A job's state as users see it.
public struct JobStatus: Sendable {
    public var id: Int64
    public var state: JobState
    public var error: String?
    public var outputDirectory: String
    public var durationSeconds: Double?
    public var tasksTotal: Int
    public var tasksDone: Int
    public var secondsDone: Double
}

/// A job was submitted into a folder that another job is still writing.
package struct OutputFolderInUse: Error, CustomStringConvertible {
    package var outputDirectory: String
    package var jobID: Int64
    package var state: JobState
    package var description: String {
        "the output folder \(self.outputDirectory) is in use by job \(self.jobID) (\(self.state)); choose another "
            + "folder, or wait for job \(self.jobID) to end (or cancel it) to replace its output"
    }
}

/// The `Idempotency-Key` of a tenant's submit and the SHA-256 of its request (`JobStore.submit`).
package struct IdempotencyKey: Sendable {
    package var key: String
    package var requestHash: Data

    package init(key: String, requestHash: Data) {
        self.key = key
        self.requestHash = requestHash
    }
}

/// A submit whose idempotency key made a job for another request.
package struct IdempotencyKeyReused: Error, CustomStringConvertible {
    package var key: String
    package var jobID: Int64
    package var description: String {
        "the Idempotency-Key \(self.key) was used for job \(self.jobID) with another request; send the same request "
            + "to get job \(self.jobID), or a new key for a new job"
    }
}

package struct JobToPlan: Sendable {
    package var id: Int64
    package var source: String
    package var outputDirectory: String
    package var settings: JobSettings
}

package struct PlannedJob: Sendable {
    package var sourceInfo: JobSourceInfo
    package var renditions: [RenditionSpec]
    package var chunks: [PlannedChunk]
    package var videoStream: Int
    package var audioStream: Int?
    package var tasks: [(spec: TaskSpec, extract: SourceExtract, priority: Int)]
}

/// A result's init segment differs from the one accepted for another chunk of its rendition.
struct InitSegmentMismatch: Error, CustomStringConvertible {
    var rendition: String
    var description: String {
        "the \(self.rendition) init segment differs from the one accepted for another chunk: agents must run the "
            + "same farm and libav versions for seamless output"
    }
}

package struct ReapedLease: Sendable {
    package var taskID: Int64
    package var jobID: Int64
    package var agent: String
    package var requeued: Bool
}

package struct JobToStitch: Sendable {
    package var id: Int64
    package var source: String
    package var outputDirectory: String
    package var sourceInfo: JobSourceInfo
    package var renditions: [RenditionSpec]
    package var segments: [OutputFile]
    package var initSegments: [String: String]
    package var container: SegmentContainer = .fmp4
    /// The job's encoder settings: the audio's sample rate and channels the stitcher checks the output against.
    package var encoder: EncoderSettings = .default
}
