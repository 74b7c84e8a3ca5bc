import FarmFormats
import FarmMedia
import Foundation

/// Figure 3: what the coordinator pays to cut a chunk out of a long source, first chunk against last. Without a
/// seek, the extractor reads the file from the start, so the last chunk of an hour costs the whole hour's reading;
/// the figure fails when a chunk is not cut after one.
struct ExtractionBenchmark {
    let workspace: Workspace
    let runs: Int

    func run(source generated: GeneratedSource, minutes: Int, height: Int) throws -> ExtractionResult {
        let probeStarted = ContinuousClock.now
        let info = try SourceProbe.probe(path: generated.path)
        let probeSeconds = (ContinuousClock.now - probeStarted).seconds
        // The coordinator's options for a job with default settings (Coordinator/JobPlanning.swift).
        let plan = try ChunkPlanner.plan(
            packets: info.packets,
            timeBase: info.video.timeBase,
            options: .init(segmentDuration: 6, minimumChunks: 4)
        )
        guard let first = plan.chunks.first, let last = plan.chunks.last, plan.chunks.count > 1 else {
            throw BenchError("the extraction source has a single chunk; give a longer one (--extraction-minutes)")
        }
        let output = try self.workspace.freshOutput("extraction")
        var firstRuns: [Double] = []
        var lastRuns: [Double] = []
        var bytes: [Int: Int] = [:]
        for run in 1...self.runs {
            say(
                "extraction: run \(run)/\(self.runs), chunks \(first.index + 1) and \(last.index + 1) of \(plan.chunks.count)"
            )
            for chunk in [first, last] {
                let path = "\(output)/chunk-\(chunk.index).nut"
                try? FileManager.default.removeItem(atPath: path)
                let started = ContinuousClock.now
                try Self.extract(chunk, of: plan, info: info, output: path)
                let seconds = (ContinuousClock.now - started).seconds
                if chunk.index == first.index { firstRuns.append(seconds) } else { lastRuns.append(seconds) }
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                bytes[chunk.index] = (attributes[.size] as? NSNumber)?.intValue ?? 0
                try FileManager.default.removeItem(atPath: path)
            }
        }
        return ExtractionResult(
            minutes: minutes,
            height: height,
            sourceCommands: generated.commands.map(shellQuoted),
            chunkCount: plan.chunks.count,
            probeSeconds: probeSeconds,
            firstChunk: first.index,
            lastChunk: last.index,
            firstRuns: firstRuns,
            lastRuns: lastRuns,
            firstBytes: bytes[first.index] ?? 0,
            lastBytes: bytes[last.index] ?? 0
        )
    }

    /// The one call being measured, made as `Coordinator/AgentSession+Leasing.swift` makes it (the shift mirrors
    /// `TaskSpec.nonNegativeShift`, which is `package` and so not visible here). Kept alone so that a change of
    /// `extractVideo`'s signature is mended in one place.
    static func extract(_ chunk: PlannedChunk, of plan: ChunkPlan, info: SourceInfo, output: String) throws {
        let earliest = min(plan.originPTS, chunk.prerollPTS)
        let start = try ChunkExtractor.extractVideo(
            source: info.path,
            streamIndex: info.video.index,
            firstPacket: chunk.firstPacket,
            lastPacket: chunk.lastPacket,
            // As the plan records it (`Coordinator/JobPlanning.swift`): the extractor seeks to this packet. Without
            // it the extractor reads from the start, which the figure measured until session 9 (7.2× for the last).
            firstPacketIdentity: info.packets[chunk.firstPacket].identity,
            shift: TimestampShift(units: earliest < 0 ? -earliest : 0, timeBase: info.video.timeBase),
            output: output
        )
        // A chunk after the first must be cut after a seek, or the figure times a read from the start.
        guard start == .sought || chunk.firstPacket == 0 else {
            throw BenchError("chunk \(chunk.index + 1) was not cut after a seek: \(start)")
        }
    }
}
