import FarmTestSupport
import Foundation
import Testing

/// schemathesis (PyPI), run against a real `farm coordinator`'s `/openapi.json` with a valid key, every operation
/// given a real job or upload to act on (Tests/players/schemathesis_run.py): no server error, and no response the
/// document does not describe.
@Suite(
    "The API against its document (schemathesis)",
    .serialized,
    .requiresPostgreSQL,
    .farmTimeLimit,
    .enabled(if: PlayerTools.isAvailable, "needs schemathesis: run make test, or set FARM_TEST_PYTHON")
)
struct SchemathesisTests {
    @Test func everyOperationAnswersAsTheDocumentSaysAndNeverWithAServerError() async throws {
        try await ProcessFarm.with("farm-schemathesis") { farm, directory in
            let sources = directory.file("sources")
            try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
            // Never decoded: no agent runs, so the job stays submitted (or fails planning) for the run.
            try Data("not a video".utf8).write(to: URL(fileURLWithPath: "\(sources)/clip.mp4"))
            try await farm.startCoordinator(
                extra: [
                    "--source-folder", sources, "--output-root", directory.file("outputs"), "--upload-folder",
                    directory.file("uploads"),
                ]
            )
            let api = "http://127.0.0.1:\(try #require(farm.httpPorts.last))"
            let key = try run(
                FarmBinary.path,
                ["keys", "create", "--tenant", "acme", "--database-url", farm.database.connectionString]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            let runner = Process()
            runner.executableURL = URL(fileURLWithPath: try PlayersTests.python())
            runner.arguments = [
                "\(PlayersTests.scripts)/schemathesis_run.py", api, key, "\(sources)/clip.mp4", directory.path,
            ]
            let log = directory.file("schemathesis.log")
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            runner.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            runner.standardError = runner.standardOutput
            try runner.run()
            runner.waitUntilExit()
            let report = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(runner.terminationStatus == 0, "schemathesis found failures:\n\(report.suffix(6000))")
            // Every operation of the document was tried, none skipped.
            let selected = report.firstMatch(of: /Selected: (\d+)\/(\d+)/)
            let tested = report.firstMatch(of: /Tested: (\d+)/)
            #expect(
                selected != nil && selected?.1 == selected?.2 && tested?.1 == selected?.2,
                "\(report.suffix(2000))"
            )
        }
    }
}
