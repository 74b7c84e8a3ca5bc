import FarmProtocol
import FarmTestSupport
import Foundation
import NIOCore
import Testing

@testable import FarmCoordinator

/// The coordinator's checks of an agent's upload, on real files: an agent can write only its own task's output
/// names, and a result is used only when its files are exactly the task's, whole, and hash as reported.
@Suite("Staged results")
struct StagedResultTests {
    /// Chunk 2 of a job, segments 2 and 3, one rendition (240p).
    static let spec = AgentConnectionStateMachineTests.spec
    static let files = [
        "240p/init.mp4": Data("init of 240p".utf8),
        "240p/segment_00002.m4s": Data("segment two".utf8),
        "240p/segment_00003.m4s": Data("segment three".utf8),
    ]

    /// A staged result in a fresh output folder, with `files` uploaded in two pieces each.
    static func staged(_ directory: TemporaryDirectory, files: [String: Data] = Self.files) throws -> StagedResult {
        let lease = AgentConnectionStateMachine.CurrentLease(taskID: 41, token: 9, spec: Self.spec)
        let staged = try StagedResult(lease: lease, outputDirectory: directory.file("out"))
        for (path, data) in files.sorted(by: { $0.key < $1.key }) {
            let half = data.count / 2
            for (offset, piece) in [(0, data.prefix(half)), (half, data.dropFirst(half))] {
                try staged.append(
                    header: .init(taskID: 41, token: 9, path: path, offset: Int64(offset)),
                    body: ByteBuffer(bytes: piece)
                )
            }
        }
        return staged
    }

    /// What the agent reports for `files`.
    static func reported(_ files: [String: Data] = Self.files) -> [OutputFile] {
        files.sorted(by: { $0.key < $1.key }).map { path, data in
            OutputFile(
                rendition: "240p",
                role: path.hasSuffix("init.mp4") ? .initSegment : .segment,
                segmentIndex: path.hasSuffix("init.mp4") ? nil : Int(path.dropLast(4).suffix(5)),
                path: path,
                bytes: Int64(data.count),
                sha256: sha256Hex(data),
                startPTS: 0,
                duration: 0,
                frames: 0,
                timeBase: Rational(1, 12800)
            )
        }
    }

    @Test(
        "only the task's own output names may be written",
        arguments: [
            ("240p/init.mp4", true), ("240p/segment_00002.m4s", true), ("240p/segment_99999.m4s", true),
            ("../x", false), ("/etc/passwd", false), ("240p/../../x", false), ("240p/../init.mp4", false),
            ("360p/init.mp4", false), ("audio/init.mp4", false), ("240p/segment_2.m4s", false),
            ("240p/segment_000002.m4s", false), ("240p/segment_0000٣.m4s", false), ("240p/x/init.mp4", false),
            ("240p/init.mp4/", false), ("240p", false), ("", false), ("240p/segment_00002.ts", false),
        ]
    )
    func outputNames(path: String, allowed: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.staged(directory, files: [:])
        #expect(staged.isAllowed(path) == allowed)
        guard !allowed else { return }
        #expect {
            try staged.append(
                header: .init(taskID: 41, token: 9, path: path, offset: 0),
                body: ByteBuffer(string: "x")
            )
        } throws: { error in
            "\(error)".contains("segment path \(path.debugDescription) is not an output of task 41")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("x")), "nothing was written outside")
    }

    @Test func aFaithfulUploadIsVerifiedAndPublishedKeepingAnInitSegmentAlreadyThere() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.staged(directory)
        try staged.verify(Self.reported())
        let output = directory.file("out")
        try FileManager.default.createDirectory(atPath: output + "/240p", withIntermediateDirectories: true)
        try Data("init of 240p".utf8).write(to: URL(fileURLWithPath: output + "/240p/init.mp4"))
        try staged.publish(into: output)
        for (path, data) in Self.files {
            #expect(FileManager.default.contents(atPath: output + "/" + path) == data, "\(path)")
        }
        staged.discard()
        #expect(!FileManager.default.fileExists(atPath: output + "/.staging/task-41-token-9"))
    }

    @Test func aMissingSegmentIsRefusedNamingIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var files = Self.files
        files["240p/segment_00003.m4s"] = nil
        let staged = try Self.staged(directory, files: files)
        #expect {
            try staged.verify(Self.reported(files))
        } throws: { error in
            "\(error)" == "the result's files are not the task's: missing [\"240p/segment_00003.m4s\"], unexpected []"
        }
    }

    @Test func aFileOfAnotherChunkIsRefusedNamingIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var files = Self.files
        files["240p/segment_00004.m4s"] = Data("the next chunk's".utf8)
        let staged = try Self.staged(directory, files: files)
        #expect {
            try staged.verify(Self.reported(files))
        } throws: { error in
            "\(error)" == "the result's files are not the task's: missing [], unexpected [\"240p/segment_00004.m4s\"]"
        }
    }

    @Test func aFileListedTwiceIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.staged(directory)
        #expect {
            try staged.verify(Self.reported() + Self.reported().prefix(1))
        } throws: { error in
            "\(error)" == "the result lists a file twice"
        }
    }

    @Test func aShortUploadIsRefusedWithBothSizes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.staged(directory)
        var reported = Self.reported()
        reported[1].bytes += 1
        #expect {
            try staged.verify(reported)
        } throws: { error in
            "\(error)"
                == "\(reported[1].path): received \(reported[1].bytes - 1) bytes, the agent reported \(reported[1].bytes)"
        }
    }

    @Test func bytesDamagedInTransitAreRefusedBySHA256() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var damaged = Self.files
        damaged["240p/segment_00002.m4s"] = Data("segment twO".utf8)
        let staged = try Self.staged(directory, files: damaged)
        #expect {
            try staged.verify(Self.reported())
        } throws: { error in
            "\(error)" == "240p/segment_00002.m4s: SHA-256 differs from the agent's; the data was damaged in transit"
        }
    }

    @Test func dataOutOfOrderIsRefusedNamingBothOffsets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let staged = try Self.staged(directory, files: [:])
        #expect {
            try staged.append(
                header: .init(taskID: 41, token: 9, path: "240p/init.mp4", offset: 5),
                body: ByteBuffer(string: "x")
            )
        } throws: { error in
            "\(error)".contains("segment data for 240p/init.mp4 at offset 5, expected 0")
        }
    }
}
