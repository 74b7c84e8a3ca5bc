import FarmFormats
import FarmProtocol
import Testing

@Suite("ChunkPlanner")
struct ChunkPlannerTests {
    /// A constant-frame-rate stream without B-frames: decode order is presentation order, `pts` = frame × `step`.
    static func cfr(frames: Int, keyframeEvery: Int, step: Int64 = 1) -> [VideoPacket] {
        (0..<frames).map { frame in
            VideoPacket(
                pts: Int64(frame) * step,
                dts: Int64(frame) * step,
                isKeyframe: frame % keyframeEvery == 0,
                duration: step
            )
        }
    }

    /// A stream with B-frames in decode order I0 P3 B1 B2 P6 B4 B5 P9 B7 B8 …: every anchor (pts divisible by 3) is
    /// sent before the two B-frames that precede it in presentation. `dts` increases with the decode index.
    static func withBFrames(anchors: Int, keyframeEvery: Int) -> [VideoPacket] {
        var order: [Int64] = [0]
        for group in 0..<anchors {
            let anchor = Int64(3 * group + 3)
            order += [anchor, anchor - 2, anchor - 1]
        }
        return order.enumerated().map { index, pts in
            VideoPacket(pts: pts, dts: Int64(index) - 1, isKeyframe: pts % Int64(keyframeEvery) == 0, duration: 1)
        }
    }

    /// Properties every plan must have, whatever the source: checked against the packets themselves.
    static func checkInvariants(_ plan: ChunkPlan, packets: [VideoPacket]) {
        #expect(plan.frameCount == packets.count)
        #expect(plan.originPTS == packets.map(\.pts).min())
        #expect(plan.chunks.map(\.index) == Array(plan.chunks.indices))
        // Every segment belongs to exactly one chunk, in order.
        #expect(plan.chunks.flatMap(\.segmentStarts) == plan.segmentStarts)
        var nextSegment = 0
        for chunk in plan.chunks {
            #expect(chunk.firstSegmentIndex == nextSegment)
            #expect(chunk.segmentStarts.first == chunk.startPTS)
            #expect(!chunk.segmentStarts.isEmpty)
            nextSegment += chunk.segmentStarts.count
        }
        // Chunks tile the timeline: each ends where the next starts, the last is open.
        for (chunk, next) in zip(plan.chunks, plan.chunks.dropFirst()) {
            #expect(chunk.endPTS == next.startPTS)
        }
        #expect(plan.chunks.first?.startPTS == plan.originPTS)
        #expect(plan.chunks.last?.endPTS == nil)
        #expect(plan.chunks.map(\.frameCount).reduce(0, +) == packets.count)

        for chunk in plan.chunks {
            let inRange = packets.indices.filter { index in
                let pts = packets[index].pts
                return pts >= chunk.startPTS && (chunk.endPTS.map { pts < $0 } ?? true)
            }
            #expect(chunk.frameCount == inRange.count)
            // Decoding starts at a keyframe at or before the chunk and reads every packet of the chunk, no more.
            #expect(packets[chunk.firstPacket].isKeyframe)
            #expect(chunk.prerollPTS == packets[chunk.firstPacket].pts)
            #expect(chunk.prerollPTS <= chunk.startPTS)
            #expect(chunk.firstPacket <= inRange.min()!)
            #expect(chunk.lastPacket == inRange.max()!)
        }
    }

    @Test("25 fps, keyframes every 2 s, 4 s segments: a segment every 100 frames")
    func constantFrameRateSegments() throws {
        // 20 s at 25 fps in a 1/12800 time base (512 units a frame), keyframe every 50 frames.
        let packets = Self.cfr(frames: 500, keyframeEvery: 50, step: 512)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 12800),
            options: .init(segmentDuration: 4)
        )
        #expect(plan.segmentStarts == [0, 100, 200, 300, 400].map { Int64($0 * 512) })
        #expect(plan.originPTS == 0)
        #expect(plan.frameCount == 500)
        // One agent slot and a 60 s chunk limit: the whole 20 s video is one chunk.
        #expect(plan.chunks.count == 1)
        let only = try #require(plan.chunks.first)
        #expect(only.endPTS == nil)
        #expect(only.firstPacket == 0)
        #expect(only.lastPacket == 499)
        #expect(only.frameCount == 500)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test(
        "minimumChunks gives at least that many chunks when there are enough segments",
        arguments: [(2, [[0, 1], [2, 3], [4]]), (3, [[0], [1], [2], [3], [4]]), (5, [[0], [1], [2], [3], [4]])]
    )
    func minimumChunks(minimum: Int, expectedSegments: [[Int]]) throws {
        let packets = Self.cfr(frames: 500, keyframeEvery: 50, step: 512)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 12800),
            options: .init(segmentDuration: 4, minimumChunks: minimum)
        )
        #expect(plan.chunks.count >= minimum)
        let segmentsOfChunks = plan.chunks.map { chunk in
            chunk.segmentStarts.map { start in plan.segmentStarts.firstIndex(of: start)! }
        }
        #expect(segmentsOfChunks == expectedSegments)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("more wanted chunks than segments: one segment per chunk, never an empty chunk")
    func minimumChunksAboveSegmentCount() throws {
        let packets = Self.cfr(frames: 500, keyframeEvery: 50, step: 512)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 12800),
            options: .init(segmentDuration: 4, minimumChunks: 32)
        )
        #expect(plan.chunks.count == 5)
        #expect(plan.chunks.map(\.segmentStarts.count) == [1, 1, 1, 1, 1])
        #expect(plan.chunks.map(\.frameCount) == [100, 100, 100, 100, 100])
        #expect(plan.chunks.map(\.startPTS) == plan.segmentStarts)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test(
        "the opening segments are chunks of one segment each, the rest as long as before",
        arguments: [
            (0, [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]), (3, [[0], [1], [2], [3, 4, 5, 6, 7, 8, 9]]),
            (12, [[0], [1], [2], [3], [4], [5], [6], [7], [8], [9]]),
        ]
    )
    func openingChunks(opening: Int, expectedSegments: [[Int]]) throws {
        let packets = Self.cfr(frames: 500, keyframeEvery: 50)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 2, openingChunks: opening)
        )
        let segmentsOfChunks = plan.chunks.map { chunk in
            chunk.segmentStarts.map { start in plan.segmentStarts.firstIndex(of: start)! }
        }
        #expect(segmentsOfChunks == expectedSegments)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("maximumChunkDuration splits a long video even with one agent slot")
    func maximumChunkDuration() throws {
        // 20 s, 2 s segments, chunks of at most 5 s: no chunk may hold more than two segments.
        let packets = Self.cfr(frames: 500, keyframeEvery: 50)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 2, minimumChunks: 1, maximumChunkDuration: 5)
        )
        #expect(plan.segmentStarts.count == 10)
        #expect(plan.chunks.count >= 4)
        for chunk in plan.chunks {
            #expect(chunk.frameCount <= 5 * 25, "chunk \(chunk.index) is \(chunk.frameCount) frames long")
        }
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("a chunk starting mid-GOP decodes from the previous keyframe and drops the pre-roll")
    func prerollFromPreviousKeyframe() throws {
        // 20 s at 25 fps, keyframes only at 0 s and 10 s, 2 s segments: most chunks start between keyframes.
        let packets = Self.cfr(frames: 500, keyframeEvery: 250)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 2, minimumChunks: 10)
        )
        #expect(plan.segmentStarts == stride(from: 0, to: 500, by: 50).map { Int64($0) })
        #expect(plan.chunks.count == 10)

        let midFirstGOP = try #require(plan.chunks.first { $0.startPTS == 100 })
        #expect(midFirstGOP.firstPacket == 0)
        #expect(midFirstGOP.prerollPTS == 0)
        #expect(midFirstGOP.prerollPTS < midFirstGOP.startPTS)
        #expect(midFirstGOP.lastPacket == 149)
        #expect(midFirstGOP.frameCount == 50)

        let onKeyframe = try #require(plan.chunks.first { $0.startPTS == 250 })
        #expect(onKeyframe.firstPacket == 250)
        #expect(onKeyframe.prerollPTS == 250)

        let midSecondGOP = try #require(plan.chunks.first { $0.startPTS == 450 })
        #expect(midSecondGOP.firstPacket == 250)
        #expect(midSecondGOP.prerollPTS == 250)
        #expect(midSecondGOP.lastPacket == 499)
        #expect(midSecondGOP.endPTS == nil)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("with B-frames, a chunk reads on past its end to the last B-frame shown before it")
    func bFrameReordering() throws {
        // 24 fps in a 1/24 time base, keyframes every 48 frames (2 s), 2 s segments; pts 0…237 in decode order
        // I0 P3 B1 B2 P6 B4 B5 …; around the second keyframe: … P45 B43 B44 I48 B46 B47 P51 B49 B50 …
        let packets = Self.withBFrames(anchors: 79, keyframeEvery: 48)
        #expect(packets.count == 238)
        #expect(Array(packets.prefix(7).map(\.pts)) == [0, 3, 1, 2, 6, 4, 5])
        #expect(packets.map(\.dts) == packets.map(\.dts).sorted())
        #expect(packets[46].pts == 48 && packets[47].pts == 46 && packets[48].pts == 47)

        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 24),
            options: .init(segmentDuration: 2, minimumChunks: 5)
        )
        #expect(plan.segmentStarts == [0, 48, 96, 144, 192])
        #expect(plan.chunks.count == 5)

        // Chunk 0 is pts [0, 48): B46 and B47 come after I48 in decode order, so it must read up to B47 (index 48).
        let first = plan.chunks[0]
        #expect(first.endPTS == 48)
        #expect(first.lastPacket == 48)
        #expect(first.frameCount == 48)
        // I48 opens an open GOP: B46 and B47 follow it in decode order and reference P45 of the GOP before. Chunk 1
        // decodes from the keyframe before (I0), so every reference exists; its pre-roll, below 48, is dropped.
        let second = plan.chunks[1]
        #expect(second.firstPacket == 0)
        #expect(second.prerollPTS == 0)
        #expect(second.frameCount == 48)
        #expect(plan.chunks.map(\.prerollPTS) == [0, 0, 48, 96, 144])
        // The last chunk holds pts 192…237.
        #expect(plan.chunks[4].frameCount == 46)
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("a segment boundary moves to a source keyframe within a tenth of a segment, not further")
    func snapToNearbyKeyframe() throws {
        // 25 fps, 1/25 time base, 4 s segments (100 frames), slack 10 frames. Keyframes at 0, 95 (5 early: snap),
        // 212 (12 late: too far, no snap), 305 (5 late: snap) and 390 (exactly 10 early: snap).
        let keyframes: Set<Int64> = [0, 95, 212, 305, 390]
        let packets = (0..<500).map { frame in
            VideoPacket(pts: Int64(frame), dts: Int64(frame), isKeyframe: keyframes.contains(Int64(frame)), duration: 1)
        }
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 4, minimumChunks: 5)
        )
        #expect(plan.segmentStarts == [0, 95, 200, 305, 390])
        #expect(plan.chunks.map(\.frameCount) == [95, 105, 105, 85, 110])
        // Snapped chunks need no pre-roll; the one at 200 decodes from 95.
        #expect(plan.chunks.map(\.prerollPTS) == [0, 95, 95, 305, 390])
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("a plan for a stream whose first pts is not zero starts at that pts")
    func nonZeroOrigin() throws {
        let packets = Self.cfr(frames: 300, keyframeEvery: 25).map { packet in
            var shifted = packet
            shifted.pts += 1000
            shifted.dts += 1000
            return shifted
        }
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 4, minimumChunks: 3)
        )
        #expect(plan.originPTS == 1000)
        #expect(plan.segmentStarts == [1000, 1100, 1200])
        #expect(plan.chunks.map(\.firstPacket) == [0, 100, 200])
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("no packets: refused with a message")
    func emptyPackets() throws {
        let error = try #require(throws: MediaError.self) {
            try ChunkPlanner.plan(packets: [], timeBase: Rational(1, 25), options: .init())
        }
        #expect(error.description.contains("no frames"), "\(error)")
    }

    @Test("two frames with one presentation timestamp: refused as damaged, naming the timestamp")
    func duplicatePTS() throws {
        var packets = Self.cfr(frames: 100, keyframeEvery: 25)
        packets[60].pts = 59
        let error = try #require(throws: MediaError.self) {
            try ChunkPlanner.plan(packets: packets, timeBase: Rational(1, 25), options: .init(segmentDuration: 2))
        }
        #expect(error.description.contains("share the presentation timestamp 59"), "\(error)")
        #expect(error.description.contains("damaged"), "\(error)")
    }

    @Test("a segment duration of zero or less is refused", arguments: [0.0, -2.0])
    func nonPositiveSegmentDuration(duration: Double) throws {
        let packets = Self.cfr(frames: 100, keyframeEvery: 25)
        let error = try #require(throws: MediaError.self) {
            try ChunkPlanner.plan(
                packets: packets,
                timeBase: Rational(1, 25),
                options: .init(segmentDuration: duration)
            )
        }
        #expect(error.description.contains("segment duration must be positive"), "\(error)")
        #expect(error.description.contains("\(duration)"), "\(error)")
    }

    @Test("a video whose first frame is not a keyframe is refused")
    func noLeadingKeyframe() throws {
        var packets = Self.cfr(frames: 100, keyframeEvery: 25)
        packets[0].isKeyframe = false
        let error = try #require(throws: MediaError.self) {
            try ChunkPlanner.plan(packets: packets, timeBase: Rational(1, 25), options: .init(segmentDuration: 2))
        }
        #expect(error.description.contains("does not start with a keyframe"), "\(error)")
    }

    @Test("closed GOPs (no picture after a keyframe shows before it) decode from their own keyframe")
    func closedGOPsNeedNoEarlierKeyframe() throws {
        // Decode order per 6-frame GOP: I P3 B1 B2 P5 B4 (pts relative to the GOP's I): no leading pictures.
        let gop: [Int64] = [0, 3, 1, 2, 5, 4]
        let packets = (0..<10).flatMap { group in
            gop.map { offset in
                let pts = Int64(group * 6) + offset
                return VideoPacket(pts: pts, dts: pts, isKeyframe: offset == 0, duration: 1)
            }
        }
        #expect(ChunkPlanner.openGOPKeyframes(packets).isEmpty)
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 6),
            options: .init(segmentDuration: 2, minimumChunks: 5)
        )
        #expect(plan.chunks.map(\.prerollPTS) == plan.chunks.map(\.startPTS))
        Self.checkInvariants(plan, packets: packets)
    }

    @Test("open GOPs: keyframes followed by leading pictures are found, and only those")
    func openGOPKeyframesAreFound() {
        let packets = Self.withBFrames(anchors: 20, keyframeEvery: 12)
        // Keyframes at pts 0, 12, 24, 36, 48, 60; every one but the first has B-frames shown before it after it.
        let open = ChunkPlanner.openGOPKeyframes(packets)
        #expect(open.map { packets[$0].pts }.sorted() == [12, 24, 36, 48, 60])
    }

    @Test("an edit list's discarded frames are pre-roll: never in a chunk, the first shown frame is time zero")
    func discardedFramesArePreRoll() throws {
        // 25 fps, keyframes every 50 frames; the edit list starts at frame 33: frames 0…32 are decoded, not shown.
        var packets = Self.cfr(frames: 300, keyframeEvery: 50)
        for index in 0..<33 { packets[index].isDiscarded = true }
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 2, minimumChunks: 3)
        )
        #expect(plan.originPTS == 33)
        #expect(plan.frameCount == 267)
        #expect(plan.chunks.map(\.frameCount).reduce(0, +) == 267)
        let first = try #require(plan.chunks.first)
        #expect(first.startPTS == 33)
        #expect(first.firstPacket == 0, "decoding starts at the keyframe before the first shown frame")
        #expect(first.prerollPTS == 0)
        #expect(plan.chunks.last?.endPTS == nil)
    }

    @Test("frames an edit list drops at the end close the last chunk")
    func discardedTailEndsTheLastChunk() throws {
        var packets = Self.cfr(frames: 200, keyframeEvery: 50)
        for index in 180..<200 { packets[index].isDiscarded = true }
        let plan = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 25),
            options: .init(segmentDuration: 2, minimumChunks: 2)
        )
        #expect(plan.frameCount == 180)
        #expect(plan.chunks.last?.endPTS == 180)
        #expect(plan.chunks.map(\.frameCount).reduce(0, +) == 180)
    }

    @Test("every frame discarded: refused, naming the edit list")
    func everyFrameDiscarded() throws {
        var packets = Self.cfr(frames: 50, keyframeEvery: 25)
        for index in packets.indices { packets[index].isDiscarded = true }
        let error = try #require(throws: MediaError.self) {
            try ChunkPlanner.plan(packets: packets, timeBase: Rational(1, 25), options: .init(segmentDuration: 2))
        }
        #expect(error.description.contains("edit list"), "\(error)")
    }
}
