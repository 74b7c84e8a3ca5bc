import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation
import NIOPosix

/// Turns a submitted job into renditions, chunks and tasks (libavformat only: probing and indexing, no decoding).
package enum JobPlanning {
    /// The plan depends on the source and the job's settings only, never on how many agents are connected: the
    /// same job makes the same tasks, so its segments are byte-identical whichever agents encode them.
    package static func plan(_ job: JobToPlan) async throws -> PlannedJob {
        let source = job.source
        let info = try await NIOThreadPool.singleton.runIfActive { try SourceProbe.probe(path: source) }
        return try self.plan(job, info: info)
    }

    package static func plan(_ job: JobToPlan, info: SourceInfo) throws -> PlannedJob {
        let settings = job.settings
        let rungs = try settings.rungs.map { try Ladder.rungs(named: $0) } ?? Ladder.standard
        let renditions = Ladder.renditions(
            displayWidth: info.displayWidth,
            displayHeight: info.displayHeight,
            rungs: rungs
        )
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(
                segmentDuration: settings.segmentDuration,
                minimumChunks: settings.minimumChunks
            )
        )
        func spec(kind: TaskSpec.Kind, chunk: PlannedChunk?) -> TaskSpec {
            TaskSpec(
                kind: kind,
                jobID: job.id,
                chunkIndex: chunk?.index ?? 0,
                chunkCount: plan.chunks.count,
                timeBase: info.video.timeBase,
                frameRate: info.video.frameRate,
                originPTS: plan.originPTS,
                startPTS: chunk?.startPTS ?? plan.originPTS,
                endPTS: chunk?.endPTS,
                segmentStarts: chunk?.segmentStarts ?? plan.segmentStarts,
                firstSegmentIndex: chunk?.firstSegmentIndex ?? 0,
                frameCount: chunk?.frameCount ?? 0,
                renditions: kind == .video ? renditions : [],
                settings: settings.encoder,
                rotation: kind == .video && info.video.rotation != 0 ? info.video.rotation : nil,
                conversion: kind == .video && !info.video.conversion.isNone ? info.video.conversion : nil
            )
        }
        var tasks: [(spec: TaskSpec, extract: SourceExtract, priority: Int)] = plan.chunks.map { chunk in
            (
                spec(kind: .video, chunk: chunk),
                SourceExtract(
                    streamIndex: info.video.index,
                    firstPacket: chunk.firstPacket,
                    lastPacket: chunk.lastPacket,
                    prerollPTS: chunk.prerollPTS,
                    firstPacketIdentity: info.packets[chunk.firstPacket].identity
                ),
                0
            )
        }
        if let audio = info.audio {
            // The audio track is one task over the whole job; it goes first so it never ends up last in line.
            tasks.insert((spec(kind: .audio, chunk: nil), SourceExtract(streamIndex: audio.index), 1), at: 0)
        }
        let sourceInfo = JobSourceInfo(
            timeBase: info.video.timeBase,
            frameRate: info.video.frameRate,
            originPTS: plan.originPTS,
            frameCount: plan.frameCount,
            segmentCount: plan.segmentStarts.count,
            durationSeconds: info.durationSeconds,
            hasAudio: info.audio != nil,
            videoCodec: info.video.codecName,
            audioDurationSeconds: info.audioEndSeconds.map { $0 - info.video.timeBase.seconds(plan.originPTS) },
            plannedTargetDuration: Self.targetDuration(plan, packets: info.packets, timeBase: info.video.timeBase)
        )
        return PlannedJob(
            sourceInfo: sourceInfo,
            renditions: renditions,
            chunks: plan.chunks,
            videoStream: info.video.index,
            audioStream: info.audio?.index,
            tasks: tasks
        )
    }

    /// The playlists' target duration from the plan: every segment's planned length, the last one to the end of
    /// the last shown frame.
    static func targetDuration(_ plan: ChunkPlan, packets: [VideoPacket], timeBase: Rational) -> Int {
        let shown = packets.filter { !$0.isDiscarded }
        let end = shown.map { $0.pts + max($0.duration, 1) }.max() ?? plan.segmentStarts.last ?? 0
        let ends = plan.segmentStarts.dropFirst() + [end]
        return Playlists.targetDuration(zip(plan.segmentStarts, ends).map { timeBase.seconds($1 - $0) })
    }
}
