import FarmProtocol

/// One chunk of a plan: a presentation-time range covering whole segments, and the decode-order packet range an
/// agent needs to produce exactly the frames of that range.
public struct PlannedChunk: Sendable, Equatable {
    public var index: Int
    /// First presentation timestamp of the chunk (inclusive).
    public var startPTS: Int64
    /// First presentation timestamp of the next chunk (exclusive), nil for the last chunk.
    public var endPTS: Int64?
    public var segmentStarts: [Int64]
    public var firstSegmentIndex: Int
    /// Decode-order index of the keyframe decoding starts from (at or before `startPTS`: the pre-roll).
    public var firstPacket: Int
    /// Decode-order index of the last packet needed: every frame below `endPTS` is decoded by then.
    public var lastPacket: Int
    /// Number of source frames in `[startPTS, endPTS)`.
    public var frameCount: Int
    /// Presentation timestamp of the pre-roll keyframe; frames before `startPTS` are decoded and dropped.
    public var prerollPTS: Int64
}

public struct ChunkPlan: Sendable, Equatable {
    /// Presentation timestamp of the first frame: output time zero.
    public var originPTS: Int64
    public var segmentStarts: [Int64]
    public var chunks: [PlannedChunk]
    public var frameCount: Int
}

/// Cuts a source timeline into segments and chunks. Pure: no I/O, tested alone.
public enum ChunkPlanner {
    public struct Options: Sendable {
        /// Target segment duration in seconds.
        public var segmentDuration: Double
        /// The plan has at least this many chunks when the video has that many segments (free agent slots).
        public var minimumChunks: Int
        /// A chunk is no longer than this, in seconds, unless one segment is.
        public var maximumChunkDuration: Double
        /// A chunk holds no more segments than fit in this many frames (an average segment's frames), unless one
        /// segment is longer: the encode-cost bound `WorkPlanner.maximumChunkFrames` gives. Nil: no such bound.
        public var maximumChunkFrames: Int?
        /// The first this many segments are chunks of one segment each, whatever the length of the others: a
        /// running job is playable once its opening segments exist (`WorkPlanner.openingSegments`), and one chunk
        /// holding them all would leave every slot but one idle until it ends.
        public var openingChunks: Int

        public init(
            segmentDuration: Double = 6,
            minimumChunks: Int = 1,
            maximumChunkDuration: Double = 60,
            maximumChunkFrames: Int? = nil,
            openingChunks: Int = 0
        ) {
            self.segmentDuration = segmentDuration
            self.minimumChunks = minimumChunks
            self.maximumChunkDuration = maximumChunkDuration
            self.maximumChunkFrames = maximumChunkFrames
            self.openingChunks = openingChunks
        }
    }

    public static func plan(packets: [VideoPacket], timeBase: Rational, options: Options) throws -> ChunkPlan {
        guard !packets.isEmpty else { throw MediaError(.unsupportedInput, "the video has no frames to plan") }
        guard options.segmentDuration > 0 else {
            throw MediaError(.unsupportedInput, "segment duration must be positive, got \(options.segmentDuration)")
        }
        // The frames a viewer sees: an edit list's discarded frames are decoded (they can be references) but never
        // shown, so they are pre-roll, not part of any chunk.
        let presentation = packets.filter { !$0.isDiscarded }.map(\.pts).sorted()
        guard !presentation.isEmpty else {
            throw MediaError(.invalidInput, "every video frame is marked as discarded; the file's edit list is damaged")
        }
        for (a, b) in zip(presentation, presentation.dropFirst()) where a == b {
            throw MediaError(
                .invalidInput,
                "two video frames share the presentation timestamp \(a); the file is damaged"
            )
        }
        let origin = presentation[0]
        let unitsPerSecond = Double(timeBase.den) / Double(timeBase.num)
        let segmentUnits = options.segmentDuration * unitsPerSecond
        let keyframes = packets.filter { $0.isKeyframe && !$0.isDiscarded }.map(\.pts).sorted()
        let openKeyframes = Self.openGOPKeyframes(packets)
        // Frames shown after the last one an edit list keeps (a clip trimmed at its end) end the last chunk.
        let trailingEnd = packets.filter { $0.isDiscarded && $0.pts > presentation.last! }.map(\.pts).min()

        // Segment k starts at the first frame at or after origin + k * duration, moved to a source keyframe when one
        // is within a tenth of a segment: such a chunk needs no pre-roll.
        var segmentStarts: [Int64] = [origin]
        var frameCursor = 0
        var k = 1.0
        while true {
            let target = Double(origin) + k * segmentUnits
            k += 1
            while frameCursor < presentation.count, Double(presentation[frameCursor]) < target { frameCursor += 1 }
            guard frameCursor < presentation.count else { break }
            var start = presentation[frameCursor]
            let slack = segmentUnits / 10
            if let nearest = keyframes.min(by: { abs(Double($0) - target) < abs(Double($1) - target) }),
                abs(Double(nearest) - target) <= slack, nearest > segmentStarts.last!
            {
                start = nearest
            }
            if start > segmentStarts.last! { segmentStarts.append(start) }
        }

        let totalSeconds = Double(presentation.last! - origin) / unitsPerSecond + options.segmentDuration / 2
        let chunksForLength = Int((totalSeconds / options.maximumChunkDuration).rounded(.up))
        let wanted = max(options.minimumChunks, chunksForLength, 1)
        var segmentsPerChunk = max(1, segmentStarts.count / wanted)
        if let maximumFrames = options.maximumChunkFrames {
            let framesPerSegment = Double(presentation.count) / Double(segmentStarts.count)
            segmentsPerChunk = min(segmentsPerChunk, max(1, Int(Double(maximumFrames) / framesPerSegment)))
        }

        // Decode-order helpers: the suffix minimum of pts tells where every frame below a given end has been read.
        var suffixMinimum = [Int64](repeating: .max, count: packets.count + 1)
        for i in stride(from: packets.count - 1, through: 0, by: -1) {
            suffixMinimum[i] = min(packets[i].pts, suffixMinimum[i + 1])
        }

        var chunks: [PlannedChunk] = []
        var segment = 0
        while segment < segmentStarts.count {
            let length = segment < options.openingChunks ? 1 : segmentsPerChunk
            let segmentsHere = Array(segmentStarts[segment..<min(segment + length, segmentStarts.count)])
            let start = segmentsHere[0]
            let nextSegment = segment + segmentsHere.count
            let end: Int64? = nextSegment < segmentStarts.count ? segmentStarts[nextSegment] : trailingEnd

            // Pre-roll: the last keyframe (in decode order) whose picture is at or before the start.
            guard var firstPacket = packets.lastIndex(where: { $0.isKeyframe && $0.pts <= start }) else {
                throw MediaError(
                    .invalidInput,
                    "no keyframe at or before timestamp \(start); the video does not start with a keyframe"
                )
            }
            // An open-GOP keyframe (H.264 recovery point, HEVC CRA, MPEG-2 open GOP) is followed by pictures that
            // reference the GOP before it, and the frames after those may still name them (reference lists, H.264
            // memory-management commands): decoding starts one keyframe earlier, so every frame the chunk outputs
            // is decoded from complete references.
            if openKeyframes.contains(firstPacket),
                let earlier = packets[..<firstPacket].lastIndex(where: \.isKeyframe)
            {
                firstPacket = earlier
            }
            var lastPacket = packets.count - 1
            if let end {
                // The first position after which every remaining packet is at or after `end`.
                var position = firstPacket
                while position < packets.count, suffixMinimum[position + 1] < end { position += 1 }
                lastPacket = min(position, packets.count - 1)
            }
            let frameCount = presentation.filter { $0 >= start && (end == nil || $0 < end!) }.count
            chunks.append(
                PlannedChunk(
                    index: chunks.count,
                    startPTS: start,
                    endPTS: end,
                    segmentStarts: segmentsHere,
                    firstSegmentIndex: segment,
                    firstPacket: firstPacket,
                    lastPacket: lastPacket,
                    frameCount: frameCount,
                    prerollPTS: packets[firstPacket].pts
                )
            )
            segment = nextSegment
        }
        return ChunkPlan(
            originPTS: origin,
            segmentStarts: segmentStarts,
            chunks: chunks,
            frameCount: presentation.count
        )
    }

    /// Decode-order indices of the keyframes followed, before the next keyframe, by a picture shown before them:
    /// leading pictures, which only an open GOP has.
    package static func openGOPKeyframes(_ packets: [VideoPacket]) -> Set<Int> {
        var open = Set<Int>()
        var keyframe: (index: Int, pts: Int64)?
        for (index, packet) in packets.enumerated() {
            if packet.isKeyframe {
                keyframe = (index, packet.pts)
            } else if let current = keyframe, packet.pts < current.pts {
                open.insert(current.index)
            }
        }
        return open
    }
}
