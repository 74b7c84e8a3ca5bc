import Foundation

/// How many tasks a machine encodes at once by default, and why: one per core (every task encodes with the one
/// thread its plan gives it, so a slot is a core), no more than its memory holds at the most a task can need.
///
/// Pure: the machine's numbers come in, the advice goes out; `forThisMachine` reads them.
package struct SlotAdvice: Sendable, Equatable {
    /// Peak resident memory one slot needs at most while encoding a 2160p chunk (decode, the scaler's and x264's
    /// frames and lookahead, the muxers). Measured with `farm transcode` of a 2160p30 source, 2 s segments: 1.50 GB
    /// peak with one agent, 1.89 GB with two, against 0.43 GB and 0.60 GB at 1080p (see `docs/PERFORMANCE.md`); the
    /// bound takes one agent's whole peak above the idle farm's, so a 4K job cannot exhaust memory.
    package static let peakBytesPerSlot: UInt64 = 1 << 30
    /// What the process needs besides its slots (libraries, the coordinator's share in an all-in-one farm).
    package static let baseBytes: UInt64 = 512 << 20

    package var cores: Int
    package var memoryBytes: UInt64
    package var slots: Int
    /// True when memory, not the cores, set the number.
    package var limitedByMemory: Bool

    package init(cores: Int, memoryBytes: UInt64) {
        self.cores = max(1, cores)
        self.memoryBytes = memoryBytes
        let spare = memoryBytes > Self.baseBytes ? memoryBytes - Self.baseBytes : 0
        let fitting = Int(min(spare / Self.peakBytesPerSlot, 1024))
        self.slots = max(1, min(self.cores, fitting))
        self.limitedByMemory = fitting < self.cores
    }

    /// Why `slots` is what it is, for the log.
    package var reason: String {
        let gib = String(format: "%.1f GiB", Double(self.memoryBytes) / Double(1 << 30))
        let perSlot = "\(Self.peakBytesPerSlot >> 20) MiB"
        if self.limitedByMemory {
            return "\(self.cores) cores, but \(gib) of memory holds \(self.slots) 2160p tasks at \(perSlot) each"
        }
        return "one per core (\(self.cores)); \(gib) of memory is enough at \(perSlot) per 2160p task"
    }

    /// The cores this process may run on (its CPU affinity and cgroup quota, as Foundation counts them) and the
    /// memory it may use (the smaller of the machine's and its cgroup's limit).
    package static func forThisMachine() -> SlotAdvice {
        var memory = ProcessInfo.processInfo.physicalMemory
        if let limit = Self.cgroupMemoryLimit() { memory = min(memory, limit) }
        return SlotAdvice(cores: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: memory)
    }

    /// cgroup v2's `memory.max` of this process (a container's limit), nil when unlimited or unknown.
    static func cgroupMemoryLimit() -> UInt64? {
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let path = "/sys/fs/cgroup" + line.dropFirst(3) + "/memory.max"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
