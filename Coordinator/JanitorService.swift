import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Removes the partial output of failed and cancelled jobs, and the chunk sources no session used for an hour.
final class JanitorService: Service, Sendable {
    private let store: JobStore
    private let rounds: RecurringRounds
    private let scratchDirectory: String
    /// When the scratch folder was last scanned for unused chunk sources: the janitor wakes on every work
    /// notification, and listing the folder that often is wasted work for files that live an hour.
    private let lastOrphanScan = Mutex<ContinuousClock.Instant?>(nil)

    init(store: JobStore, rounds: RecurringRounds, scratchDirectory: String) {
        self.store = store
        self.rounds = rounds
        self.scratchDirectory = scratchDirectory
    }

    func run() async {
        await self.rounds.run { try await self.cleanUp() }
    }

    private func cleanUp() async throws {
        while let jobID = try await self.store.cleanNextEndedJob({ output, files in
            try await NIOThreadPool.singleton.runIfActive {
                try Stitcher.removePartialOutput(outputDirectory: output, publishedFiles: files)
            }
        }) {
            self.rounds.logger.info("removed the partial output of an ended job", metadata: ["job": "\(jobID)"])
        }
        // Expired uploads (and those past their expiry whose job has ended): the row first, so no request finds an
        // upload whose file is gone.
        while true {
            let paths = try await self.store.removeExpiredUploads()
            guard !paths.isEmpty else { break }
            try await NIOThreadPool.singleton.runIfActive {
                for path in paths { try? FileManager.default.removeItem(atPath: path) }
            }
            self.rounds.logger.info("removed expired uploads", metadata: ["uploads": "\(paths.count)"])
        }
        let now = ContinuousClock.now
        let scanDue = self.lastOrphanScan.withLock { last in
            guard last.map({ now - $0 >= .seconds(600) }) ?? true else { return false }
            last = now
            return true
        }
        guard scanDue else { return }
        let scratch = self.scratchDirectory
        let unused = try await NIOThreadPool.singleton.runIfActive {
            ChunkSourceCopy.removeUnused(scratchDirectory: scratch, olderThan: ChunkSourceCopy.defaultLifetime)
        }
        if unused > 0 {
            self.rounds.logger.info("removed unused chunk sources", metadata: ["files": "\(unused)"])
        }
    }
}
