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
            settings: settings
        )
    }

    /// Splits a clip into chunks, encodes each separately, and checks the joined rungs have every source frame once
    /// with keyframes at every segment start, with B-frames and without.
    ///
    /// With B-frames, each segment's first picture must decode and show at the segment's start, as its boxes say
    /// (`tfdt`, composition offset 0), so no edit list is needed. libavformat reads such fragments a constant
    /// amount late (it delays every picture by the largest negative composition offset, `dts_shift` in its mov
    /// demuxer), so the times it reports are compared after taking its first picture's time off.
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

        var settings = EncoderSettings.default
        settings.bFrames = bFrames
        var files: [String: Data] = [:]
        for chunk in plan.chunks {
            let chunkPath = directory.file("chunk\(chunk.index).nut")
            try ChunkExtractor.extractVideo(
                source: source,
                streamIndex: info.video.index,
                firstPacket: chunk.firstPacket,
                lastPacket: chunk.lastPacket,
                output: chunkPath
            )
            let work = directory.file("work\(chunk.index)")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            let spec = Self.videoTask(chunk, of: plan, source: info, renditions: renditions, settings: settings)
            let outputs = try ChunkEncoder(spec: spec, sourcePath: chunkPath, workDirectory: work).run { _ in true }
            for output in outputs {
                files[output.description.path] = try Data(contentsOf: URL(fileURLWithPath: output.localPath))
            }
        }
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
            let readLate = try #require(times.first)
            #expect(bFrames > 0 || readLate == 0, "without B-frames libavformat reads the first picture at 0")
            let keyframes = try Probe.keyframeTimes(path).map { $0 - readLate }
            let segmentStartSeconds = plan.segmentStarts.map { info.video.timeBase.seconds($0 - plan.originPTS) }
            for start in segmentStartSeconds {
                #expect(keyframes.contains { abs($0 - start) < 0.001 }, "keyframe at segment start \(start)")
            }
            // What a player that follows the boxes shows: each segment's first picture at the segment's start.
            let timescale = try #require(MP4Boxes.timescale(initSegment: [UInt8](files["\(rendition.name)/init.mp4"]!)))
            for (index, start) in plan.segmentStarts.enumerated() {
                let name = String(format: "%@/segment_%05d.m4s", rendition.name, index)
                let timing = try MP4Boxes.timing(ofFragment: [UInt8](try #require(files[name])))
                let expected = Int64(
                    (info.video.timeBase.seconds(start - plan.originPTS) * Double(timescale)).rounded()
                )
                #expect(timing.baseDecodeTime == expected && timing.leadingCompositionOffset == 0, "\(name): \(timing)")
            }
        }
    }
}
