import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@Suite("A chunk's source copy on a real PostgreSQL", .requiresPostgreSQL, .farmTimeLimit)
struct ChunkSourceCopyTests {
    /// A task that failed and is leased again sends the copy its first lease made, untouched (same inode: never
    /// written again), and another chunk gets a copy of its own.
    @Test func aRetriedTaskReusesItsCopy() async throws {
        try await LeaseFencingTests.withPlannedJob { store, _, _ in
            let scratch = try TemporaryDirectory("scratch")
            defer { scratch.remove() }
            // The audio task is leased first; the next two are video chunks.
            var leased: [LeasedTask] = []
            while leased.count < 3, let task = try await store.lease(agentID: 1, agentName: "a", leaseSeconds: 30) {
                leased.append(task)
            }
            let videos = leased.filter { $0.spec.kind == .video }
            try #require(videos.count == 2)
            let first = try ChunkSourceCopy.prepare(videos[0], scratchDirectory: scratch.path)
            #expect(!first.wasReused)
            let inode = try Self.inode(first.path)
            let other = try ChunkSourceCopy.prepare(videos[1], scratchDirectory: scratch.path)
            #expect(!other.wasReused)
            #expect(other.path != first.path)
            // A chunk after the first is cut by seeking, not by reading the file from its start.
            #expect(videos.contains { ($0.extract.firstPacket ?? 0) > 0 })
            for (task, prepared) in zip(videos, [first, other]) where (task.extract.firstPacket ?? 0) > 0 {
                #expect(prepared.start == .sought)
            }

            _ = try await store.fail(
                taskID: videos[0].taskID,
                token: videos[0].token,
                agentName: "a",
                message: "the agent lost its connection",
                retryable: true
            )
            var again: LeasedTask?
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, again == nil {
                if let task = try await store.lease(agentID: 2, agentName: "b", leaseSeconds: 30) {
                    again = task.taskID == videos[0].taskID ? task : nil
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let retry = try #require(again)
            #expect(retry.token > videos[0].token)
            let reused = try ChunkSourceCopy.prepare(retry, scratchDirectory: scratch.path)
            #expect(reused.wasReused)
            #expect(reused.path == first.path)
            #expect(try Self.inode(reused.path) == inode)
            // Nothing left half-written beside the copies.
            let names = try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted()
            #expect(names == [first.path, other.path].map { ($0 as NSString).lastPathComponent }.sorted())
        }
    }

    static func inode(_ path: String) throws -> UInt64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require((attributes[.systemFileNumber] as? NSNumber)?.uint64Value)
    }
}
