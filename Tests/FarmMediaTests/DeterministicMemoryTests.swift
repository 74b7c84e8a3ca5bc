import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@Suite("Memory an encode reads before writing")
struct DeterministicMemoryTests {
    /// libx264 reads bytes it never wrote (FaultTests saw a 240p rung differ between two encodes of the same chunk
    /// by one agent), so from the first encode on every allocation is filled: a block freed with other bytes in it
    /// comes back holding the fill, not what was there.
    @Test func memoryHandedToTheEncodersHoldsNothingFromBefore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (info, plan) = try ChunkEncoderTests.plannedClip(in: directory, seconds: 1, segmentDuration: 1)
        let chunk = try #require(plan.chunks.first)
        let renditions = Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.video.height)
        let spec = ChunkEncoderTests.videoTask(chunk, of: plan, source: info, renditions: renditions)
        let work = directory.file("work")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        // The encode turns the fill on; nothing else in this process does.
        _ = try ChunkEncoder(spec: spec, sourcePath: info.path, workDirectory: work).run { _ in true }

        // Blocks above glibc's per-thread cache (1032 bytes): the cache hands small blocks back as they were, fill or
        // not, and the pictures and buffers that matter are far larger.
        for size in [4_096, 200_000, 3_000_000] {
            let first = try #require(malloc(size))
            memset(first, 0x3C, size)
            free(first)
            let second = try #require(malloc(size)).assumingMemoryBound(to: UInt8.self)
            defer { free(second) }
            let bytes = UnsafeBufferPointer(start: second, count: size)
            let leftovers = bytes.filter { $0 == 0x3C }.count
            #expect(leftovers == 0, "\(size) bytes: \(leftovers) still hold what the freed block held")
            #expect(bytes.allSatisfy { $0 == 0xA5 ^ 0xFF }, "\(size) bytes: all hold the fill")
        }
    }
}
