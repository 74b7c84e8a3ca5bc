import FarmProtocol

/// One video task of a plan: a chunk × a group of rungs, with what it costs to encode.
public struct PlannedVideoTask: Sendable, Equatable {
    public var chunk: PlannedChunk
    /// The rungs this task encodes from one decode of its chunk, in ladder order.
    public var renditions: [RenditionSpec]
    /// Which of its chunk's tasks this is (0..<`groupCount`), and how many the chunk has.
    public var group: Int
    public var groupCount: Int
    /// Encode cost in pixel-frames (`WorkPlanner`, "Cost model").
    public var cost: Int64
    /// Lease priority: the cost in mega-pixel-frames, so the costliest task is leased first; the tasks of the
    /// job's opening (`openingSegments`) before all others.
    public var priority: Int
}

/// Cuts a job's video into tasks sized by encode cost, so no slot idles while one long task ends the job.
/// Pure: a function of the chunk plan, the ladder and the source's size, never of how many agents are connected,
/// so the same job makes the same tasks and the same bytes.
///
/// Cost model (docs/PERFORMANCE.md, "Cost model"), in pixel-frames, the work of libx264 `veryfast` on one thread:
/// - a rung costs its output pixels × the chunk's frames (scaling is folded in: it follows the output size);
/// - every task also decodes its chunk once: source pixels × decoded frames (the chunk's frames plus its pre-roll
///   and any frames decoded past its end for reordering) × `decodeFactor`.
///
/// Rungs are grouped first-fit decreasing with the costliest rung as the capacity, so no group's encodes cost more
/// than the top rung's and the top rung is never a tail behind a task holding the whole ladder. Each extra group
/// decodes the chunk again; a group whose encodes cost less than `minimumEncodePerDecode` decodes is not worth that
/// decode and joins the cheapest other group (which then exceeds the capacity by less than that many decodes).
public enum WorkPlanner {
    /// Decoding a source pixel costs this fraction of encoding an output pixel. Measured on the project's 2-core
    /// machine (docs/PERFORMANCE.md): H.264 1080p30 at 7 Mb/s, one thread, decodes at 0.25 of the CPU time per pixel
    /// that scaling and encoding the default ladder takes.
    public static let decodeFactor = 0.25
    /// A group is split off only when its encodes cost at least this many decodes of its chunk; below that, the
    /// duplicated decode would cost more CPU than the shorter tail saves.
    public static let minimumEncodePerDecode = 2.0
    /// A task should cost about this much: one 6 s segment of 1080p30 in one rung (373 mega-pixel-frames, some
    /// seconds of one core). Long enough that a lease's fixed costs (extraction, connection, encoder set-up) stay a
    /// few per cent of it; short enough that a 10-minute 1080p job makes hundreds of tasks.
    public static let targetTaskCost: Int64 = 1920 * 1080 * 180
    /// Priority of the audio task: above every video task. It is one long task over the whole job, leased first so
    /// it never ends up last in line.
    public static let audioPriority = Int(Int32.max)
    /// The chunks holding the job's first segments are leased before the rest (in cost order among themselves):
    /// a player can start a running job once three target durations of every rung are there (RFC 8216 §6.3.3,
    /// `ProgressivePlaylists`), and cost order alone would leave the cheaper rungs' first segments for after every
    /// top-rung task. The tail is unchanged: the rest of the job still runs costliest first.
    public static let openingSegments = 3
    /// Added to the priority of the opening's tasks: above any cost (2^30 mega-pixel-frames), below the audio.
    public static let openingPriority = 1 << 30

    /// The rungs grouped into tasks of one chunk (each group in ladder order; the group of the costliest rung first).
    public static func groups(renditions: [RenditionSpec], sourceWidth: Int, sourceHeight: Int) -> [[RenditionSpec]] {
        guard let capacity = renditions.map(Self.pixels).max() else { return [] }
        let decode = Self.decodeCost(width: sourceWidth, height: sourceHeight, frames: 1)
        // First-fit decreasing; equal costs keep ladder order, so the plan is the same on every run.
        let decreasing = renditions.indices.sorted {
            (Self.pixels(renditions[$0]), $1) > (Self.pixels(renditions[$1]), $0)
        }
        var groups: [(indices: [Int], cost: Int64)] = []
        for index in decreasing {
            let cost = Self.pixels(renditions[index])
            if let fit = groups.firstIndex(where: { $0.cost + cost <= capacity }) {
                groups[fit].indices.append(index)
                groups[fit].cost += cost
            } else {
                groups.append(([index], cost))
            }
        }
        // Too cheap a group joins the cheapest other group: the plan pays one decode less, and that group grows by
        // less than `minimumEncodePerDecode` decodes.
        while groups.count > 1, let cheapest = groups.indices.min(by: { groups[$0].cost < groups[$1].cost }),
            Double(groups[cheapest].cost) < Self.minimumEncodePerDecode * Double(decode)
        {
            let joining = groups.remove(at: cheapest)
            let host = groups.indices.min(by: { groups[$0].cost < groups[$1].cost })!
            groups[host].indices += joining.indices
            groups[host].cost += joining.cost
        }
        return groups.map { $0.indices.sorted().map { renditions[$0] } }
    }

    /// The longest chunk, in frames, whose costliest task stays near `targetTaskCost`; at least one frame (the chunk
    /// planner never cuts below one segment anyway).
    public static func maximumChunkFrames(renditions: [RenditionSpec], sourceWidth: Int, sourceHeight: Int) -> Int {
        let costliest =
            Self.groups(renditions: renditions, sourceWidth: sourceWidth, sourceHeight: sourceHeight)
            .map { Self.cost(of: $0, width: sourceWidth, height: sourceHeight, decodedFrames: 1, frames: 1) }
            .max() ?? 1
        return max(1, Int(Self.targetTaskCost / max(costliest, 1)))
    }

    /// The video tasks of a chunk plan: for each chunk in order, one task per group of rungs.
    public static func tasks(
        chunks: [PlannedChunk],
        renditions: [RenditionSpec],
        sourceWidth: Int,
        sourceHeight: Int
    ) -> [PlannedVideoTask] {
        let groups = Self.groups(renditions: renditions, sourceWidth: sourceWidth, sourceHeight: sourceHeight)
        return chunks.flatMap { chunk in
            groups.enumerated().map { group, rungs in
                let cost = Self.cost(
                    of: rungs,
                    width: sourceWidth,
                    height: sourceHeight,
                    decodedFrames: chunk.lastPacket - chunk.firstPacket + 1,
                    frames: chunk.frameCount
                )
                return PlannedVideoTask(
                    chunk: chunk,
                    renditions: rungs,
                    group: group,
                    groupCount: groups.count,
                    cost: cost,
                    priority: Self.priority(cost: cost)
                        + (chunk.firstSegmentIndex < Self.openingSegments ? Self.openingPriority : 0)
                )
            }
        }
    }

    /// The lease priority of a task of this cost: mega-pixel-frames, below the audio's and within a 32-bit column.
    public static func priority(cost: Int64) -> Int {
        Int(min(max(cost / 1_000_000, 0), Int64(Self.openingPriority) - 1))
    }

    static func cost(of rungs: [RenditionSpec], width: Int, height: Int, decodedFrames: Int, frames: Int) -> Int64 {
        Self.decodeCost(width: width, height: height, frames: decodedFrames)
            + rungs.map { Self.pixels($0) * Int64(frames) }.reduce(0, +)
    }

    static func decodeCost(width: Int, height: Int, frames: Int) -> Int64 {
        Int64((Double(width * height) * Self.decodeFactor).rounded()) * Int64(frames)
    }

    static func pixels(_ rendition: RenditionSpec) -> Int64 { Int64(rendition.width * rendition.height) }
}
