import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// A task's source as it is sent to agents: the chunk's packets cut from the job's source into the scratch folder.
///
/// The copy is named by what its bytes depend on, so a retry of the task, and every task of the same chunk, sends the
/// copy already made instead of cutting it again. Copies are kept after sending; the janitor removes those no session
/// used for `ChunkSourceCopy.defaultLifetime` (see `removeUnused`).
package enum ChunkSourceCopy {
    /// How long a copy no session used stays in the scratch folder: a retry comes after a lease expires (seconds to
    /// minutes), the tasks of one chunk are leased close together, and an hour of unused copies is what the scratch
    /// folder must hold beside the ones in use.
    package static let defaultLifetime: TimeInterval = 3600

    package struct Prepared: Sendable, Equatable {
        package var path: String
        /// How the extractor reached the chunk's first packet; nil when a copy already there was used.
        package var start: ChunkExtractor.Start?

        package var wasReused: Bool { self.start == nil }
    }

    /// Makes the copy of `task`'s source in `scratchDirectory`, or finds the one made before.
    ///
    /// The copy is written under a name of its own and renamed into place (atomic in one folder), so a session that
    /// finds it never reads half a file; two sessions that cut the same copy at once both write whole files, and the
    /// later rename wins with the same bytes.
    package static func prepare(_ task: LeasedTask, scratchDirectory: String) throws -> Prepared {
        let shift = task.sourceShift
        let fileManager = FileManager.default
        // A source that cannot be read has no copy either: the extractor then fails with the reason in its words.
        let attributes = (try? fileManager.attributesOfItem(atPath: task.source)) ?? [:]
        let name = Self.fileName(
            source: task.source,
            file: attributes,
            extract: task.extract,
            shift: shift
        )
        let path = (scratchDirectory as NSString).appendingPathComponent(name)
        if fileManager.fileExists(atPath: path) {
            // Marked used: the janitor keeps copies by their modification time.
            try? fileManager.setAttributes([.modificationDate: Date()], ofItemAtPath: path)
            return Prepared(path: path, start: nil)
        }
        // Ends in ".nut" too, so a crash's leftovers are removed with the unused copies.
        let partial = (scratchDirectory as NSString).appendingPathComponent(
            "\(name.dropLast(4))-\(UUID().uuidString).partial.nut"
        )
        do {
            let start: ChunkExtractor.Start
            if let first = task.extract.firstPacket, let last = task.extract.lastPacket {
                start = try ChunkExtractor.extractVideo(
                    source: task.source,
                    streamIndex: task.extract.streamIndex,
                    firstPacket: first,
                    lastPacket: last,
                    firstPacketIdentity: task.extract.firstPacketIdentity,
                    shift: shift,
                    output: partial
                )
            } else {
                try ChunkExtractor.extractStream(
                    source: task.source,
                    streamIndex: task.extract.streamIndex,
                    shift: shift,
                    output: partial
                )
                start = .fromStart
            }
            guard rename(partial, path) == 0 else {
                throw MediaError(
                    .io,
                    "\(path): cannot move the chunk's source into place (\(String(cString: strerror(errno)))); "
                        + "check the scratch folder's permissions and free space"
                )
            }
            return Prepared(path: path, start: start)
        } catch {
            try? fileManager.removeItem(atPath: partial)
            throw error
        }
    }

    /// `farm-source-<hash>.nut`, the hash over everything the copy's bytes depend on: the source file (path, inode,
    /// size and modification time, so a file replaced in place is cut again), the stream, the packet range and the
    /// timestamp shift. How the extractor finds the first packet is not in it: a seek gives the same bytes.
    package static func fileName(
        source: String,
        file attributes: [FileAttributeKey: Any],
        extract: SourceExtract,
        shift: TimestampShift
    ) -> String {
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let range = extract.firstPacket.map { "\($0)...\(extract.lastPacket ?? -1)" } ?? "whole stream"
        let key = [
            "farm-source 1",
            source,
            "\((attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0)",
            "\((attributes[.size] as? NSNumber)?.int64Value ?? -1)",
            "\(modified.bitPattern)",
            "\(extract.streamIndex)",
            range,
            "\(shift.units) \(shift.timeBase.num)/\(shift.timeBase.den)",
        ].joined(separator: "\n")
        var hasher = SHA256Stream()
        hasher.update(Data(key.utf8))
        return "farm-source-\(hasher.finalize().prefix(32)).nut"
    }

    /// Removes from `scratchDirectory` the copies no session used (made or reused, which sets the modification
    /// time) for longer than `age`, and the partial files of extractions a crash cut short. The rule needs no
    /// database: a copy in use was touched within the last seconds, and one a session has open stays readable
    /// after it is removed; a copy removed just as a retry wanted it is made again by the next lease.
    package static func removeUnused(scratchDirectory: String, olderThan age: TimeInterval) -> Int {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: scratchDirectory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("farm-source-") && name.hasSuffix(".nut") {
            let path = (scratchDirectory as NSString).appendingPathComponent(name)
            guard let modified = (try? fileManager.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                Date().timeIntervalSince(modified) > age
            else { continue }
            if (try? fileManager.removeItem(atPath: path)) != nil { removed += 1 }
        }
        return removed
    }
}

extension LeasedTask {
    /// How far the copy's timestamps are moved from the source's (NUT refuses negative ones); the agent gets a spec
    /// moved as far.
    package var sourceShift: TimestampShift {
        TimestampShift(
            units: self.spec.nonNegativeShift(prerollPTS: self.extract.prerollPTS),
            timeBase: self.spec.timeBase
        )
    }
}
