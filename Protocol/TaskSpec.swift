/// An exact rational number, used for time bases and frame rates.
public struct Rational: Codable, Sendable, Hashable, CustomStringConvertible {
    public var num: Int32
    public var den: Int32
    public init(_ num: Int32, _ den: Int32) {
        self.num = num
        self.den = den
    }
    public var doubleValue: Double { den == 0 ? 0 : Double(num) / Double(den) }
    public var description: String { "\(num)/\(den)" }

    /// Seconds for a count of units of this time base.
    public func seconds(_ units: Int64) -> Double { Double(units) * Double(num) / Double(den) }
}

/// One output rung of the ladder.
public struct RenditionSpec: Codable, Sendable, Hashable {
    public var name: String
    public var width: Int
    public var height: Int
    /// Peak video bitrate in bits per second (capped CRF).
    public var maxBitrate: Int
    public init(name: String, width: Int, height: Int, maxBitrate: Int) {
        self.name = name
        self.width = width
        self.height = height
        self.maxBitrate = maxBitrate
    }
}

/// Every setting that decides the bytes of an encode. Two agents given equal settings produce equal segments, so
/// nothing here may come from the agent's own machine (core count included).
public struct EncoderSettings: Codable, Sendable, Hashable {
    public var codec: String
    public var preset: String
    public var crf: Int
    public var threads: Int
    /// Longest distance between keyframes inside a segment, in seconds.
    public var maxKeyframeInterval: Double
    /// B-frames between reference frames (x264's `bframes`), 0 for none; the default is 3, the presets' own.
    /// fMP4 segments carry them with no edit list and no negative composition offset: the job's output is shown a
    /// little later than its source (`TaskSpec.presentationDelay`). MPEG-TS jobs never have them (`JobSettings`). See
    /// `docs/PERFORMANCE.md`, "B-frames", for what they save (7–32 % of the rate at equal PSNR) and how their timing
    /// is written.
    public var bFrames: Int
    public var audioBitrate: Int
    public var audioSampleRate: Int
    public var audioChannels: Int

    public static let `default` = EncoderSettings(
        codec: "libx264",
        preset: "veryfast",
        crf: 23,
        threads: 1,
        maxKeyframeInterval: 2,
        bFrames: 3,
        audioBitrate: 128_000,
        audioSampleRate: 48_000,
        audioChannels: 2
    )

    public init(
        codec: String,
        preset: String,
        crf: Int,
        threads: Int,
        maxKeyframeInterval: Double,
        bFrames: Int,
        audioBitrate: Int,
        audioSampleRate: Int,
        audioChannels: Int
    ) {
        self.codec = codec
        self.preset = preset
        self.crf = crf
        self.threads = threads
        self.maxKeyframeInterval = maxKeyframeInterval
        self.bFrames = bFrames
        self.audioBitrate = audioBitrate
        self.audioSampleRate = audioSampleRate
        self.audioChannels = audioChannels
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.codec = try container.decode(String.self, forKey: .codec)
        self.preset = try container.decode(String.self, forKey: .preset)
        self.crf = try container.decode(Int.self, forKey: .crf)
        self.threads = try container.decode(Int.self, forKey: .threads)
        self.maxKeyframeInterval = try container.decode(Double.self, forKey: .maxKeyframeInterval)
        // Jobs planned before the setting existed were encoded without B-frames, and their retries must be too.
        self.bFrames = try container.decodeIfPresent(Int.self, forKey: .bFrames) ?? 0
        self.audioBitrate = try container.decode(Int.self, forKey: .audioBitrate)
        self.audioSampleRate = try container.decode(Int.self, forKey: .audioSampleRate)
        self.audioChannels = try container.decode(Int.self, forKey: .audioChannels)
    }
}

/// How a source's decoded pictures become web pictures (progressive, SDR) before they are scaled to each rung.
public struct PictureConversion: Codable, Sendable, Hashable {
    /// The transfer of a high-dynamic-range source, tone mapped to BT.709 SDR.
    public enum HighDynamicRange: String, Codable, Sendable {
        /// SMPTE ST 2084 (HDR10).
        case pq
        /// ARIB STD-B67 (hybrid log-gamma).
        case hlg
    }

    /// The source is interlaced (its field order says so, or it is DV): every frame is deinterlaced, one output
    /// frame per source frame (the frame rate, not the field rate).
    public var deinterlace: Bool
    /// Tone mapped from this transfer (and BT.2020) to BT.709; nil for SDR.
    public var highDynamicRange: HighDynamicRange?

    public init(deinterlace: Bool = false, highDynamicRange: HighDynamicRange? = nil) {
        self.deinterlace = deinterlace
        self.highDynamicRange = highDynamicRange
    }

    /// Whether pictures pass through unchanged.
    public var isNone: Bool { !self.deinterlace && self.highDynamicRange == nil }
}

/// What an agent must encode for one task. Timestamps are in the source stream's time base (`timeBase`).
public struct TaskSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case video
        case audio
    }

    public var kind: Kind
    public var jobID: Int64
    /// Chunk number within the job (video tasks), for messages.
    public var chunkIndex: Int
    public var chunkCount: Int
    public var timeBase: Rational
    /// Nominal frame rate of the source (encoder rate control and keyframe spacing).
    public var frameRate: Rational
    /// Presentation timestamp of the job's first frame: time zero of the output.
    public var originPTS: Int64
    /// First presentation timestamp that belongs to this task (inclusive).
    public var startPTS: Int64
    /// First presentation timestamp that belongs to the next task (exclusive); nil for the last chunk.
    public var endPTS: Int64?
    /// Presentation timestamps at which a new segment starts, the first one equal to `startPTS`.
    public var segmentStarts: [Int64]
    /// Global number of the first segment of this task.
    public var firstSegmentIndex: Int
    /// Source frames in `[startPTS, endPTS)`, from the coordinator's index; the agent checks it decoded as many.
    public var frameCount: Int
    public var renditions: [RenditionSpec]
    public var settings: EncoderSettings
    /// Clockwise turn (90, 180 or 270 degrees) that makes the source's pictures upright; nil when they are.
    public var rotation: Int?
    /// What turns the source's decoded pictures into web pictures before scaling (deinterlacing, HDR tone mapping);
    /// nil when they need neither. Decided by the plan from the source's signalling, so every chunk does the same.
    public var conversion: PictureConversion?
    /// How many tasks share this task's chunk, each encoding a group of its rungs (`WorkPlanner`); nil for one, as in
    /// tasks planned before rungs were grouped.
    public var chunkTaskCount: Int?
    /// How much later than its source time every picture and sound of the output is shown (`timeBase`), the same
    /// for every task of the job, so that a B-frame is never shown before it decodes (`PresentationDelay`); 0
    /// without B-frames. Nil in tasks planned before it existed, whose B-frames are written with negative
    /// composition offsets, as their retries must be.
    public var presentationDelay: Int64?

    public init(
        kind: Kind,
        jobID: Int64,
        chunkIndex: Int,
        chunkCount: Int,
        timeBase: Rational,
        frameRate: Rational,
        originPTS: Int64,
        startPTS: Int64,
        endPTS: Int64?,
        segmentStarts: [Int64],
        firstSegmentIndex: Int,
        frameCount: Int,
        renditions: [RenditionSpec],
        settings: EncoderSettings,
        rotation: Int? = nil,
        conversion: PictureConversion? = nil,
        chunkTaskCount: Int? = nil,
        presentationDelay: Int64? = nil
    ) {
        self.kind = kind
        self.jobID = jobID
        self.chunkIndex = chunkIndex
        self.chunkCount = chunkCount
        self.timeBase = timeBase
        self.frameRate = frameRate
        self.originPTS = originPTS
        self.startPTS = startPTS
        self.endPTS = endPTS
        self.segmentStarts = segmentStarts
        self.firstSegmentIndex = firstSegmentIndex
        self.frameCount = frameCount
        self.renditions = renditions
        self.settings = settings
        self.rotation = rotation
        self.conversion = conversion
        self.chunkTaskCount = chunkTaskCount
        self.presentationDelay = presentationDelay
    }

    /// The task in messages: `chunk 17/120`, and its rungs when its chunk has several tasks
    /// (`chunk 17/120 1080p`).
    package var chunkLabel: String {
        guard (self.chunkTaskCount ?? 1) > 1 else { return self.chunkName }
        return self.chunkName + " " + self.renditions.map(\.name).joined(separator: "+")
    }

    /// `chunk 17/120`.
    package var chunkName: String { "chunk \(self.chunkIndex + 1)/\(self.chunkCount)" }

    /// This task with every source timestamp moved by `offset`, for a source copy whose timestamps were moved the
    /// same way. The output is unchanged: it is timed from `originPTS`, which moves too.
    package func shifted(by offset: Int64) -> TaskSpec {
        var shifted = self
        shifted.originPTS += offset
        shifted.startPTS += offset
        shifted.endPTS = self.endPTS.map { $0 + offset }
        shifted.segmentStarts = self.segmentStarts.map { $0 + offset }
        return shifted
    }

    /// How far a task's source timestamps (in `timeBase`) must move so that the earliest picture its copy carries
    /// (`prerollPTS`, the keyframe decoding starts from; the job's first frame when nil) is at zero or later: MPEG-TS
    /// captures whose clock wrapped start below zero once libavformat unwraps them, an edit list's discarded
    /// pre-roll is before zero, and the video chunk copy is NUT, which refuses negative presentation timestamps.
    /// Audio moves with the video to keep sync.
    package func nonNegativeShift(prerollPTS: Int64? = nil) -> Int64 {
        let earliest = min(self.originPTS, prerollPTS ?? self.originPTS)
        return earliest < 0 ? -earliest : 0
    }
}
