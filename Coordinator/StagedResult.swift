import FarmProtocol
import Foundation
import NIOCore
import NIOFoundationCompat

/// An agent's output files for one lease, kept under a temporary folder in the job's output folder until the result
/// is accepted, then renamed into place (a rename within one file system: readers never see a partial segment).
final class StagedResult: @unchecked Sendable {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    let taskID: Int64
    let token: Int64
    let spec: TaskSpec
    /// The job's output folder, which `publish(into:)` is given.
    let outputDirectory: String
    let folder: URL
    private var sizes: [String: Int64] = [:]

    init(lease: AgentConnectionStateMachine.CurrentLease, outputDirectory: String) throws {
        self.taskID = lease.taskID
        self.token = lease.token
        self.spec = lease.spec
        self.outputDirectory = outputDirectory
        self.folder = URL(fileURLWithPath: outputDirectory)
            .appendingPathComponent(".staging")
            .appendingPathComponent("task-\(lease.taskID)-token-\(lease.token)")
        try? FileManager.default.removeItem(at: self.folder)
        try FileManager.default.createDirectory(at: self.folder, withIntermediateDirectories: true)
    }

    /// The file names an agent may write for this task: `<rendition>/init.mp4` and `<rendition>/segment_NNNNN.m4s`
    /// of its own renditions (`OutputNames`). Anything else (`..`, absolute paths) is refused, so an agent cannot
    /// write elsewhere.
    func isAllowed(_ path: String) -> Bool { self.spec.isOutputPath(path) }

    func append(header: FarmMessage.SegmentData, body: ByteBuffer) throws {
        guard self.isAllowed(header.path) else {
            throw FarmProtocolError.malformed(
                "segment path \(header.path.debugDescription) is not an output of task \(self.taskID)"
            )
        }
        let current = self.sizes[header.path] ?? 0
        guard header.offset == current else {
            throw FarmProtocolError.malformed(
                "segment data for \(header.path) at offset \(header.offset), expected \(current)"
            )
        }
        let url = self.folder.appendingPathComponent(header.path)
        if current == 0 {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: body.readableBytesView)
        self.sizes[header.path] = current + Int64(body.readableBytes)
    }

    /// Checks the reported outputs are exactly the task's, complete, and match their SHA-256.
    func verify(_ outputs: [OutputFile]) throws {
        let reported = Set(outputs.map(\.path))
        guard reported.count == outputs.count else { throw Invalid("the result lists a file twice") }
        if let expected = self.spec.expectedOutputPaths {
            guard reported == expected else {
                let missing = expected.subtracting(reported).sorted().prefix(3)
                let extra = reported.subtracting(expected).sorted().prefix(3)
                throw Invalid(
                    "the result's files are not the task's: missing \(Array(missing)), unexpected \(Array(extra))"
                )
            }
        } else {
            guard reported.contains(OutputNames.initSegmentPath(rendition: OutputNames.audioRendition)),
                reported.count >= 2
            else {
                throw Invalid("the audio result has no init segment or no segment")
            }
        }
        for output in outputs {
            guard self.isAllowed(output.path) else { throw Invalid("\(output.path) is not an output of this task") }
            guard self.sizes[output.path] == output.bytes else {
                throw Invalid(
                    "\(output.path): received \(self.sizes[output.path] ?? 0) bytes, the agent reported \(output.bytes)"
                )
            }
            let data = try Data(contentsOf: self.folder.appendingPathComponent(output.path))
            guard sha256Hex(data) == output.sha256 else {
                throw Invalid("\(output.path): SHA-256 differs from the agent's; the data was damaged in transit")
            }
        }
    }

    /// Moves the files into the job's output folder. An init segment already there (from another chunk, checked
    /// identical) is kept.
    func publish(into outputDirectory: String) throws {
        let output = URL(fileURLWithPath: outputDirectory)
        for path in self.sizes.keys.sorted() {
            let target = output.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: target.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            if path.hasSuffix("/\(OutputNames.initSegment)"), FileManager.default.fileExists(atPath: target.path) {
                continue
            }
            if rename(self.folder.appendingPathComponent(path).path, target.path) != 0 {
                throw Invalid("could not move \(path) into \(outputDirectory): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Removes the staged files, and `.staging` itself once no other upload uses it: a result that arrives after
    /// its job ended (the janitor may have cleaned the folder already) leaves nothing behind.
    func discard() {
        try? FileManager.default.removeItem(at: self.folder)
        // rmdir(2) removes only an empty folder, so an upload that starts meanwhile keeps its own.
        _ = self.folder.deletingLastPathComponent().withUnsafeFileSystemRepresentation { path in
            path.map { rmdir($0) }
        }
    }
}
