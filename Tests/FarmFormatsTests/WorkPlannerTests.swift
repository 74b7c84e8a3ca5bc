import FarmFormats
import FarmProtocol
import Testing

@Suite("WorkPlanner")
struct WorkPlannerTests {
    /// A source of `seconds` at 30 fps with a keyframe every 2 s, planned as `JobPlanning` does: chunks bounded by the
    /// cost of the ladder, then tasks.
    static func plan(
        seconds: Int,
        width: Int = 1920,
        height: Int = 1080,
        rungs: [Ladder.Rung] = Ladder.standard,
        segmentDuration: Double = 6,
        minimumChunks: Int = 4
    ) throws -> (chunks: ChunkPlan, renditions: [RenditionSpec], tasks: [PlannedVideoTask]) {
        let packets = (0..<(seconds * 30)).map { frame in
            VideoPacket(pts: Int64(frame), dts: Int64(frame), isKeyframe: frame % 60 == 0, duration: 1)
        }
        let renditions = Ladder.renditions(displayWidth: width, displayHeight: height, rungs: rungs)
        let chunks = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 30),
            options: .init(
                segmentDuration: segmentDuration,
                minimumChunks: minimumChunks,
                maximumChunkFrames: WorkPlanner.maximumChunkFrames(
                    renditions: renditions,
                    sourceWidth: width,
                    sourceHeight: height
                )
            )
        )
        let tasks = WorkPlanner.tasks(
            chunks: chunks.chunks,
            renditions: renditions,
            sourceWidth: width,
            sourceHeight: height
        )
        return (chunks, renditions, tasks)
    }

    /// Every (rung, segment) of the job is in exactly one task, each task covering whole segments of its chunk.
    static func checkCoverage(_ plan: (chunks: ChunkPlan, renditions: [RenditionSpec], tasks: [PlannedVideoTask])) {
        var covered: [String: Int] = [:]
        for task in plan.tasks {
            #expect(!task.renditions.isEmpty)
            #expect(!task.chunk.segmentStarts.isEmpty, "a task covers at least one whole segment")
            #expect(
                Array(plan.chunks.segmentStarts[task.chunk.firstSegmentIndex...].prefix(task.chunk.segmentStarts.count))
                    == task.chunk.segmentStarts
            )
            for rendition in task.renditions {
                for segment in task.chunk
                    .firstSegmentIndex..<(task.chunk.firstSegmentIndex + task.chunk.segmentStarts.count)
                {
                    covered["\(rendition.name)/\(segment)", default: 0] += 1
                }
            }
        }
        let expected = plan.renditions.flatMap { rendition in
            plan.chunks.segmentStarts.indices.map { "\(rendition.name)/\($0)" }
        }
        #expect(covered.keys.sorted() == expected.sorted())
        #expect(
            covered.values.allSatisfy { $0 == 1 },
            "encoded twice: \(covered.filter { $0.value > 1 }.keys.sorted())"
        )
        // Every frame of every rung: the tasks of a rung add up to the source's frames.
        for rendition in plan.renditions {
            let frames = plan.tasks.filter { $0.renditions.contains(rendition) }.map(\.chunk.frameCount).reduce(0, +)
            #expect(frames == plan.chunks.frameCount, "\(rendition.name)")
        }
    }

    @Test("the default 1080p ladder: the top rung alone, the four below it together")
    func defaultLadderGroups() {
        let renditions = Ladder.renditions(displayWidth: 1920, displayHeight: 1080)
        let groups = WorkPlanner.groups(renditions: renditions, sourceWidth: 1920, sourceHeight: 1080)
        #expect(groups.map { $0.map(\.name) } == [["1080p"], ["240p", "360p", "480p", "720p"]])
        // No group's encodes cost more than the top rung's.
        #expect(groups.allSatisfy { $0.map { $0.width * $0.height }.reduce(0, +) <= 1920 * 1080 })
    }

    @Test("the same job gives the same tasks, in the same order")
    func deterministic() throws {
        let first = try Self.plan(seconds: 95)
        let second = try Self.plan(seconds: 95)
        #expect(first.tasks == second.tasks)
        #expect(first.chunks == second.chunks)
    }

    @Test(
        "every frame of every rung is encoded exactly once, in whole segments",
        arguments: [(1920, 1080, 30), (3840, 2160, 20), (1280, 720, 61), (640, 360, 45), (1920, 1080, 1)]
    )
    func everySegmentOfEveryRungOnce(width: Int, height: Int, seconds: Int) throws {
        Self.checkCoverage(try Self.plan(seconds: seconds, width: width, height: height))
    }

    @Test(
        "no task costs more than the costliest single-rung task",
        arguments: [(1920, 1080), (3840, 2160), (2560, 1440), (1280, 720)]
    )
    func groupsStayWithinTheTopRung(width: Int, height: Int) throws {
        let plan = try Self.plan(seconds: 30, width: width, height: height)
        let top = try #require(plan.renditions.max { $0.width * $0.height < $1.width * $1.height })
        for chunk in plan.chunks.chunks {
            let ofChunk = plan.tasks.filter { $0.chunk.index == chunk.index }
            #expect(ofChunk.count >= 2, "the top rung is not the tail of a task holding the whole ladder")
            let decode =
                Int64(Double(width * height) * WorkPlanner.decodeFactor)
                * Int64(chunk.lastPacket - chunk.firstPacket + 1)
            // A group too cheap for a decode of its own may push its host past the top rung by less than that.
            let capacity =
                decode + Int64(top.width * top.height * chunk.frameCount)
                + Int64(WorkPlanner.minimumEncodePerDecode * Double(decode))
            for task in ofChunk {
                #expect(task.cost <= capacity, "chunk \(chunk.index) \(task.renditions.map(\.name))")
                #expect(task.groupCount == ofChunk.count)
            }
            // Few duplicated decodes: one more than a single process needs, whatever the ladder's height.
            #expect(ofChunk.count == 2)
        }
    }

    @Test("a cheap group is not worth a second decode of its chunk: a 360p source is one task per chunk")
    func cheapGroupsJoinTheOthers() {
        let renditions = Ladder.renditions(displayWidth: 640, displayHeight: 360)
        let groups = WorkPlanner.groups(renditions: renditions, sourceWidth: 640, sourceHeight: 360)
        #expect(groups.map { $0.map(\.name) } == [["240p", "360p"]])
        // A 240p rung beside 1080p costs less than two 1080p decodes: it rides along with the top rung.
        let sparse = Ladder.renditions(
            displayWidth: 1920,
            displayHeight: 1080,
            rungs: try! Ladder.rungs(named: ["240p", "1080p"])
        )
        #expect(
            WorkPlanner.groups(renditions: sparse, sourceWidth: 1920, sourceHeight: 1080).map { $0.map(\.name) }
                == [["240p", "1080p"]]
        )
    }

    @Test("priorities follow cost: the opening's tasks first, then the costliest task first, the audio before all")
    func prioritiesInCostOrder() throws {
        // 33 s: the last chunk is shorter (3 s), so its tasks cost less than the full ones.
        let plan = try Self.plan(seconds: 33)
        for task in plan.tasks {
            let opening = task.chunk.firstSegmentIndex < WorkPlanner.openingSegments
            #expect(task.priority == Int(task.cost / 1_000_000) + (opening ? WorkPlanner.openingPriority : 0))
            #expect(task.priority < WorkPlanner.audioPriority)
        }
        // Lease order: priority first, plan order among equals (`ORDER BY t.priority DESC, t.id`).
        let leased = plan.tasks.enumerated().sorted {
            ($0.element.priority, $1.offset) > ($1.element.priority, $0.offset)
        }
        .map(\.element)
        // Every rung's first three segments (6 s chunks here: three chunks) before anything else, so a player can
        // start early; then cost order.
        let opening = leased.prefix { $0.chunk.firstSegmentIndex < WorkPlanner.openingSegments }
        #expect(Set(opening.map(\.chunk.index)) == [0, 1, 2])
        #expect(opening.count == 3 * plan.tasks.filter { $0.chunk.index == 0 }.count)
        let rest = leased.dropFirst(opening.count)
        #expect(rest.allSatisfy { $0.chunk.firstSegmentIndex >= WorkPlanner.openingSegments })
        #expect(zip(opening, opening.dropFirst()).allSatisfy { $0.cost >= $1.cost })
        #expect(zip(rest, rest.dropFirst()).allSatisfy { $0.cost >= $1.cost })
        #expect(leased.first?.renditions.map(\.name) == ["1080p"])
        #expect(leased.first?.chunk.index == 0)
        #expect(leased.last?.chunk.index == plan.chunks.chunks.count - 1, "the short last chunk's cheap group ends")
        #expect(leased.last?.renditions.count == 4)
    }

    @Test("a 10-minute 1080p job gives a large farm hundreds of tasks")
    func longJobMakesHundredsOfTasks() throws {
        let plan = try Self.plan(seconds: 600)
        #expect(plan.tasks.count >= 200, "\(plan.tasks.count) tasks")
        #expect(plan.chunks.chunks.allSatisfy { $0.segmentStarts.count == 1 })
        Self.checkCoverage(plan)
        // A cheap ladder (240p alone) is cut into longer chunks: three segments cost about one of the whole ladder
        // (the decode of the 1080p source is most of it).
        let cheap = try Self.plan(seconds: 600, rungs: try Ladder.rungs(named: ["240p"]))
        #expect(cheap.chunks.chunks.dropLast().allSatisfy { $0.segmentStarts.count == 3 })
        #expect(cheap.tasks.count == cheap.chunks.chunks.count)
        #expect(cheap.tasks.count == 34)
    }

    @Test("a source shorter than one segment: one chunk, every rung once")
    func tinySource() throws {
        let plan = try Self.plan(seconds: 1)
        #expect(plan.chunks.segmentStarts.count == 1)
        #expect(plan.chunks.chunks.count == 1)
        #expect(plan.tasks.map { $0.renditions.map(\.name) } == [["1080p"], ["240p", "360p", "480p", "720p"]])
        Self.checkCoverage(plan)
    }

    @Test("a ladder of one rung: one task per chunk")
    func oneRung() throws {
        let plan = try Self.plan(seconds: 60, rungs: try Ladder.rungs(named: ["1080p"]))
        #expect(plan.tasks.count == plan.chunks.chunks.count)
        #expect(plan.tasks.allSatisfy { $0.groupCount == 1 && $0.group == 0 })
        #expect(plan.chunks.chunks.count == 10, "one 6 s segment per chunk: a 1080p rung is costly")
        Self.checkCoverage(plan)
    }

    @Test("the chunk planner holds a chunk within the frame bound, never below one segment")
    func chunkFramesBound() throws {
        let packets = (0..<900).map {
            VideoPacket(pts: Int64($0), dts: Int64($0), isKeyframe: $0 % 30 == 0, duration: 1)
        }
        let bounded = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 30),
            options: .init(segmentDuration: 2, minimumChunks: 1, maximumChunkFrames: 200)
        )
        // 2 s segments are 60 frames: three fit in 200.
        #expect(bounded.chunks.dropLast().allSatisfy { $0.segmentStarts.count == 3 })
        let tight = try ChunkPlanner.plan(
            packets: packets,
            timeBase: Rational(1, 30),
            options: .init(segmentDuration: 2, minimumChunks: 1, maximumChunkFrames: 10)
        )
        #expect(tight.chunks.count == 15)
    }
}
