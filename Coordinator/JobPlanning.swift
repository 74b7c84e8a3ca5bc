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
        // Decoding works on the coded picture, before any rotation or aspect-ratio correction.
        let (sourceWidth, sourceHeight) = (info.video.width, info.video.height)
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(
                segmentDuration: settings.segmentDuration,
                minimumChunks: settings.minimumChunks,
                maximumChunkFrames: WorkPlanner.maximumChunkFrames(
                    renditions: renditions,
                    sourceWidth: sourceWidth,
                    sourceHeight: sourceHeight
                ),
                openingChunks: settings.openingChunks
            )
        )
        let work = WorkPlanner.tasks(
            chunks: plan.chunks,
            renditions: renditions,
            sourceWidth: sourceWidth,
            sourceHeight: sourceHeight
        )
        let delayPlan = PresentationDelay.plan(
            packets: info.packets,
            originPTS: plan.originPTS,
            bFrames: settings.encoder.bFrames,
            timeBase: info.video.timeBase
        )
        let presentationDelay = delayPlan.delay
        // Fewer B-frames than asked for when the source has frames shown so long that as many in a row would delay
        // the whole job by more than `PresentationDelay.longestSeconds`.
        var encoder = settings.encoder
        encoder.bFrames = delayPlan.bFrames
        func spec(kind: TaskSpec.Kind, task: PlannedVideoTask?) -> TaskSpec {
            let chunk = task?.chunk
            return TaskSpec(
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
                renditions: task?.renditions ?? [],
                settings: encoder,
                rotation: kind == .video && info.video.rotation != 0 ? info.video.rotation : nil,
                conversion: kind == .video && !info.video.conversion.isNone ? info.video.conversion : nil,
                chunkTaskCount: task.flatMap { $0.groupCount > 1 ? $0.groupCount : nil },
                presentationDelay: presentationDelay
            )
        }
        // In plan order (chunk by chunk, groups in decreasing cost): the lease order among equal priorities.
        var tasks: [(spec: TaskSpec, extract: SourceExtract, priority: Int)] = work.map { task in
            (
                spec(kind: .video, task: task),
                SourceExtract(
                    streamIndex: info.video.index,
                    firstPacket: task.chunk.firstPacket,
                    lastPacket: task.chunk.lastPacket,
                    prerollPTS: task.chunk.prerollPTS,
                    firstPacketIdentity: info.packets[task.chunk.firstPacket].identity
                ),
                task.priority
            )
        }
        if let audio = info.audio {
            // The audio track is one task over the whole job; it goes first so it never ends up last in line.
            tasks.insert(
                (spec(kind: .audio, task: nil), SourceExtract(streamIndex: audio.index), WorkPlanner.audioPriority),
                at: 0
            )
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
            plannedTargetDuration: Self.targetDuration(plan, packets: info.packets, timeBase: info.video.timeBase),
            keyframesMS: ThumbnailPlan.keyframeTimes(
                of: info.packets,
                originPTS: plan.originPTS,
                timeBase: info.video.timeBase
            ),
            presentationDelay: presentationDelay,
            bFrames: delayPlan.bFrames == settings.encoder.bFrames ? nil : delayPlan.bFrames
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
