import FarmCoordinator
import FarmProtocol
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// A 50 MB video uploaded with tuspy (the tus project's Python client) to a real `farm coordinator` process: the
/// connection breaks midway, the coordinator is killed with a piece half received, another coordinator starts on
/// the same address, the client resumes against it, and the file is intact; the job the upload's settings ask for
/// becomes ready on a real agent and `farm verify` passes on it.
@Suite(
    "Uploads through a farm",
    .serialized,
    .requiresPostgreSQL,
    .farmTimeLimit,
    .enabled(
        if: PlayerTools.isAvailable,
        "needs tuspy: run make test, or set FARM_TEST_PYTHON to a python with Tests/players/requirements.txt"
    )
)
struct UploadsThroughAFarmTests {
    @Test func anUploadResumedAfterTheCoordinatorDiesIsIntactAndBecomesAJob() async throws {
        try await ProcessFarm.with("farm-uploads") { farm, directory in
            // 50 MB of video: 640x360 with grain, losslessly coded, so the file is big and decodes fast.
            let source = directory.file("source.mp4")
            try run(
                "ffmpeg",
                [
                    "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=10",
                    "-vf", "noise=alls=8:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                    "-g", "50", "-pix_fmt", "yuv420p", "-y", source,
                ]
            )
            let size = try #require(try FileManager.default.attributesOfItem(atPath: source)[.size] as? Int)
            try #require(size >= 50_000_000, "the source is \(size) bytes")

            let folders = [
                "--output-root", directory.file("outputs"), "--upload-folder", directory.file("uploads"),
            ]
            try await farm.startCoordinator(extra: folders)
            let http = try #require(farm.httpPorts.last)
            let key = try run(
                FarmBinary.path,
                ["keys", "create", "--tenant", "acme", "--database-url", farm.database.connectionString]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            let arguments = [
                "http://127.0.0.1:\(http)", key, source, directory.file("tus-urls.json"),
                #"{"rungs": ["240p", "360p"], "segmentDuration": 2}"#,
            ]

            // Half with tuspy; then twice a piece announced as 4 MiB of which 1 MiB is sent: the first connection
            // is dropped, the coordinator is killed while it waits for the rest of the second.
            let python = try PlayersTests.python()
            let script = "\(PlayersTests.scripts)/tus_upload.py"
            let starter = Process()
            starter.executableURL = URL(fileURLWithPath: python)
            starter.arguments = [script, "start"] + arguments
            let input = Pipe()
            let output = Pipe()
            starter.standardInput = input
            starter.standardOutput = output
            try starter.run()
            // The first broken PATCH: the 1 MiB it stored counts.
            let kept = String(decoding: output.fileHandleForReading.availableLine(), as: UTF8.self)
            let offsets = kept.split(separator: " ").dropFirst().compactMap { Int64($0) }
            try #require(kept.hasPrefix("KEPT ") && offsets.count == 2, "tus_upload.py start printed \(kept)")
            #expect(offsets[1] == offsets[0] + 1 << 20, "a broken PATCH keeps the bytes it stored: \(kept)")
            let line = String(decoding: output.fileHandleForReading.availableLine(), as: UTF8.self)
            try #require(line.hasPrefix("MIDWAY "), "tus_upload.py start printed \(line)")
            let midway = try #require(Int64(line.dropFirst("MIDWAY ".count).trimmingCharacters(in: .whitespaces)))
            #expect(midway >= Int64(size / 2) && midway < Int64(size))
            // Let the half-sent piece reach the coordinator before it dies.
            try await Task.sleep(for: .milliseconds(500))
            farm.coordinators[0].signal(SIGKILL)
            farm.coordinators[0].process.waitUntilExit()
            input.fileHandleForWriting.write(Data("go\n".utf8))
            starter.waitUntilExit()
            #expect(starter.terminationStatus == 0)

            // Another coordinator on the same address: the client's stored URL still works.
            let port = try await farm.startCoordinator(http: "127.0.0.1:\(http)", extra: folders)
            let resumed = try run(python, [script, "resume"] + arguments)
            #expect(resumed.contains("DONE http://127.0.0.1:\(http)/v1/uploads/"), "\(resumed)")

            let (path, jobID) = try await farm.withStore { _, client in
                let rows = try await client.query("SELECT path, job_id FROM uploads", logger: testLogger)
                var found: [(String, Int64?)] = []
                for try await row in rows.decode((String, Int64?).self) { found.append(row) }
                return found.first ?? ("", nil)
            }
            let stored = sha256Hex(try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(stored == sha256Hex(try Data(contentsOf: URL(fileURLWithPath: source))), "the stored file differs")
            let job = try #require(jobID, "the upload's farm-settings made no job")

            try farm.startAgent("agent-1", port: port, extra: ["--slots", "2"])
            let status = try await farm.waitForJob(job, timeout: .seconds(300))
            try #require(status.state == .ready, "the job ended \(status.state): \(status.error ?? "")")
            let report = try run(FarmBinary.path, ["verify", source, status.outputDirectory, "--min-psnr", "30"])
            #expect(report.contains("PASSED: every check holds"), "\(report)")
        }
    }
}

extension FileHandle {
    /// Reads up to the first newline (or the end).
    func availableLine() -> Data {
        var line = Data()
        while let byte = try? self.read(upToCount: 1), let first = byte.first, first != UInt8(ascii: "\n") {
            line.append(first)
        }
        return line
    }
}
