import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@Suite("Chunk encoding, real libav")
struct ChunkEncoderTests {
    /// The video task of one planned chunk, as the coordinator would send it.
    static func videoTask(
        _ chunk: PlannedChunk,
        of plan: ChunkPlan,
        source info: SourceInfo,
        renditions: [RenditionSpec],
        settings: EncoderSettings = .default
    ) -> TaskSpec {
        TaskSpec(
            kind: .video,
            jobID: 1,
            chunkIndex: chunk.index,
            chunkCount: plan.chunks.count,
            timeBase: info.video.timeBase,
            frameRate: info.video.frameRate,
            originPTS: plan.originPTS,
            startPTS: chunk.startPTS,
            endPTS: chunk.endPTS,
            segmentStarts: chunk.segmentStarts,
            firstSegmentIndex: chunk.firstSegmentIndex,
            frameCount: chunk.frameCount,
            renditions: renditions,
            settings: settings,
            presentationDelay: Self.presentationDelay(plan, info: info, bFrames: settings.bFrames)
        )
    }

    /// The job's presentation delay, planned as the coordinator plans it.
    static func presentationDelay(_ plan: ChunkPlan, info: SourceInfo, bFrames: Int) -> Int64 {
        PresentationDelay.plan(
            packets: info.packets,
            originPTS: plan.originPTS,
            bFrames: bFrames,
            timeBase: info.video.timeBase
        ).delay
    }

    /// A 426x240 clip without audio, `source.mp4` in `directory`, probed and planned in segments of
    /// `segmentDuration` seconds.
    static func plannedClip(
        in directory: TemporaryDirectory,
        seconds: Double,
        segmentDuration: Double
    ) throws -> (info: SourceInfo, plan: ChunkPlan) {
        let source = directory.file("source.mp4")
        try Fixtures.makeClip(at: source, seconds: seconds, width: 426, height: 240, audio: false)
        let info = try SourceProbe.probe(path: source)
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(segmentDuration: segmentDuration, minimumChunks: 1)
        )
        return (info, plan)
    }

    /// The chunk's packets copied out of the source, as the coordinator sends them.
    static func extract(_ chunk: PlannedChunk, of info: SourceInfo, to path: String) throws {
        try ChunkExtractor.extractVideo(
            source: info.path,
            streamIndex: info.video.index,
            firstPacket: chunk.firstPacket,
            lastPacket: chunk.lastPacket,
            output: path
        )
    }

    /// Extracts and encodes every chunk of `plan` as agents would, each in a folder of its own: every output file's
    /// bytes by its path in the output folder.
    static func encodeChunks(
        of plan: ChunkPlan,
        info: SourceInfo,
        renditions: [RenditionSpec],
        bFrames: Int,
        in directory: TemporaryDirectory
    ) throws -> [String: Data] {
        var settings = EncoderSettings.default
        settings.bFrames = bFrames
        var files: [String: Data] = [:]
        for chunk in plan.chunks {
            let chunkPath = directory.file("chunk\(chunk.index).nut")
            try Self.extract(chunk, of: info, to: chunkPath)
            let work = directory.file("work\(chunk.index)")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let spec = Self.videoTask(chunk, of: plan, source: info, renditions: renditions, settings: settings)
            let outputs = try ChunkEncoder(spec: spec, sourcePath: chunkPath, workDirectory: work).run { _ in true }
            for output in outputs {
                files[output.description.path] = try Data(contentsOf: URL(fileURLWithPath: output.localPath))
            }
        }
        return files
    }

    /// Splits a clip into chunks, encodes each separately, and checks the joined rungs have every source frame once
    /// with keyframes at every segment start, with B-frames and without.
    ///
    /// With B-frames, each segment's first picture must decode at the segment's start (`tfdt`) and show the job's
    /// presentation delay later, with no negative composition offset, so no edit list is needed and libavformat
    /// reads the times the boxes state: every picture at its source time plus the delay.
    @Test(arguments: [0, 3])
    func chunksJoinIntoTheSourceFrames(bFrames: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        try Fixtures.makeClip(at: source, seconds: 8, width: 640, height: 360)
        let info = try SourceProbe.probe(path: source)
        #expect(info.packets.count == 200)
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(segmentDuration: 2, minimumChunks: 3)
        )
        #expect(plan.chunks.count >= 3)
        let renditions = Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.video.height)
        #expect(renditions.map(\.name) == ["240p", "360p"])

        let files = try Self.encodeChunks(of: plan, info: info, renditions: renditions, bFrames: bFrames, in: directory)
        for rendition in renditions {
            var joined = files["\(rendition.name)/init.mp4"]!
            for index in 0..<plan.segmentStarts.count {
                joined += try #require(files[String(format: "%@/segment_%05d.m4s", rendition.name, index)])
            }
            let path = directory.file("\(rendition.name).mp4")
            try joined.write(to: URL(fileURLWithPath: path))
            #expect(try Probe.videoFrameCount(path) == 200)
            let times = try Probe.framePresentationTimes(path)
            #expect(times.count == 200)
            #expect(zip(times, times.dropFirst()).allSatisfy { abs($1 - $0 - 0.04) < 0.001 }, "no gap or duplicate")
            let delay = info.video.timeBase.seconds(Self.presentationDelay(plan, info: info, bFrames: bFrames))
            #expect(bFrames == 0 || delay > 0)
            let first = try #require(times.first)
            #expect(abs(first - delay) < 0.001, "libavformat reads the first picture at the delay, \(delay) s")
            let keyframes = try Probe.keyframeTimes(path).map { $0 - delay }
            let segmentStartSeconds = plan.segmentStarts.map { info.video.timeBase.seconds($0 - plan.originPTS) }
            for start in segmentStartSeconds {
                #expect(keyframes.contains { abs($0 - start) < 0.001 }, "keyframe at segment start \(start)")
            }
            // What the boxes say: each segment's first picture decodes at the segment's start and shows the delay
            // later; no picture shows before it decodes.
            let timescale = try #require(MP4Boxes.timescale(initSegment: [UInt8](files["\(rendition.name)/init.mp4"]!)))
            for (index, start) in plan.segmentStarts.enumerated() {
                let name = String(format: "%@/segment_%05d.m4s", rendition.name, index)
                let timing = try MP4Boxes.timing(ofFragment: [UInt8](try #require(files[name])))
                let expected = Int64(
                    (info.video.timeBase.seconds(start - plan.originPTS) * Double(timescale)).rounded()
                )
                #expect(timing.baseDecodeTime == expected, "\(name): \(timing)")
                #expect(timing.leadingCompositionOffset == Int64((delay * Double(timescale)).rounded()), "\(name)")
                #expect(timing.deepestNegativeCompositionOffset == 0, "\(name): \(timing)")
            }
        }
    }

    /// The 240p task of the first 2 s chunk of a 4 s clip, planned with the default settings, and its chunk's copy.
    static func firstChunkTask(in directory: TemporaryDirectory) throws -> (spec: TaskSpec, chunkPath: String) {
        let (info, plan) = try Self.plannedClip(in: directory, seconds: 4, segmentDuration: 2)
        let chunk = try #require(plan.chunks.first)
        let renditions = [try #require(Ladder.renditions(displayWidth: 426, displayHeight: 240).first)]
        let chunkPath = directory.file("chunk.nut")
        try Self.extract(chunk, of: info, to: chunkPath)
        return (Self.videoTask(chunk, of: plan, source: info, renditions: renditions), chunkPath)
    }

    /// A B-frame task planned before jobs had a presentation delay (a retry of such a job) is encoded as it was
    /// then, so its segments match the ones already accepted: each segment's first picture shows when it decodes
    /// and the B-frames before they decode (negative composition offsets).
    @Test("a B-frame task planned before the presentation delay encodes as it did")
    func taskWithoutPresentationDelayEncodesAsBefore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (spec, chunkPath) = try Self.firstChunkTask(in: directory)
        spec.presentationDelay = nil
        let outputs = try ChunkEncoder(spec: spec, sourcePath: chunkPath, workDirectory: directory.path).run { _ in true
        }
        let segments = outputs.filter { $0.description.role == .segment }
        #expect(segments.count == spec.segmentStarts.count)
        for segment in segments {
            let timing = try MP4Boxes.timing(
                ofFragment: [UInt8](Data(contentsOf: URL(fileURLWithPath: segment.localPath)))
            )
            #expect(timing.leadingCompositionOffset == 0, "\(segment.description.path): \(timing)")
            #expect(timing.deepestNegativeCompositionOffset < 0, "\(segment.description.path): \(timing)")
        }
    }

    /// A delay shorter than the encoder's reordering (a plan that got it wrong) would show a B-frame before it
    /// decodes: the task fails, naming the delay, instead of making segments every player reads differently.
    @Test("a presentation delay too short for the B-frames fails the task")
    func aTooShortPresentationDelayFailsTheTask() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (spec, chunkPath) = try Self.firstChunkTask(in: directory)
        let planned = try #require(spec.presentationDelay)
        #expect(planned > 0, "the default settings use B-frames")
        spec.presentationDelay = planned / 3 - 1
        let error = #expect(throws: MediaError.self) {
            try ChunkEncoder(spec: spec, sourcePath: chunkPath, workDirectory: directory.path).run { _ in true }
        }
        #expect(error?.description.contains("more than the job's presentation delay of \(planned / 3 - 1)") == true)
    }

    /// With B-frames a segment's last picture in decode order is often not its last in presentation order, and a
    /// fragment's last sample lasts until the next segment's first picture: with frames of unequal length (a
    /// variable frame rate, or the seam of clips joined by stream copy), taking the wrong frame's length leaves a gap
    /// or an overlap at the seam, which the stitch refuses. Every segment must end where the next one starts, in its
    /// boxes, as the stitch reads them.
    @Test(arguments: [0, 3])
    func segmentsOfUnevenFramesJoinExactly(bFrames: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("uneven.mp4")
        // Every third frame lasts 30 ms longer: 25 fps with a limp.
        try run(
            "ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                "testsrc2=size=426x240:rate=25:duration=6", "-vf",
                "setpts='(N*0.04+floor(N/3)*0.03)/TB'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset",
                "ultrafast", "-g", "25", "-video_track_timescale", "1000", source,
            ]
        )
        let info = try SourceProbe.probe(path: source)
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(segmentDuration: 1, minimumChunks: 2)
        )
        #expect(plan.segmentStarts.count >= 6)
        let renditions = [try #require(Ladder.renditions(displayWidth: 426, displayHeight: 240).first)]
        let files = try Self.encodeChunks(of: plan, info: info, renditions: renditions, bFrames: bFrames, in: directory)
        let timescale = try #require(files["240p/init.mp4"].flatMap { MP4Boxes.timescale(initSegment: [UInt8]($0)) })
        var expectedStart: Int64?
        for index in 0..<plan.segmentStarts.count {
            let name = String(format: "240p/segment_%05d.m4s", index)
            let timing = try MP4Boxes.timing(ofFragment: [UInt8](try #require(files[name])))
            let start = info.video.timeBase.seconds(plan.segmentStarts[index] - plan.originPTS)
            #expect(timing.baseDecodeTime == Int64((start * Double(timescale)).rounded()), "\(name) starts on time")
            if let expectedStart {
                #expect(timing.baseDecodeTime == expectedStart, "the segment before \(name) ends where it starts")
            }
            expectedStart = timing.baseDecodeTime + timing.duration
        }
        let end = Double(expectedStart ?? 0) / Double(timescale)
        #expect(abs(end - info.durationSeconds) < 0.001, "the last segment ends with the video, not at \(end) s")
    }
}
