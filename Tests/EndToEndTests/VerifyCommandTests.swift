import FarmCoordinator
import FarmMedia
import FarmTestSupport
import Foundation
import Testing

/// `farm verify` as a user runs it, and on what the farm itself produces.
@Suite("farm verify")
struct VerifyCommandTests {
    @Test func exitsZeroOnAFaithfulOutputAndOneOnADamagedOne() throws {
        let directory = try TemporaryDirectory("farm-verify")
        defer { directory.remove() }
        let source = try HLSFixture.makeSource(directory)
        let output = directory.file("hls")
        try HLSFixture.makeOutput(source: source, at: output)

        let printed = try run(FarmBinary.path, ["verify", source, output, "--min-psnr", "30"])
        #expect(printed.contains("PASSED: every check holds"), "\(printed)")
        #expect(printed.contains("240p    320x240    100"), "\(printed)")

        try FileManager.default.removeItem(atPath: output + "/120p/segment_00003.m4s")
        #expect {
            try run(FarmBinary.path, ["verify", source, output, "--no-quality"])
        } throws: { error in
            (error as? CommandFailed)?.status == 1
        }
        #expect {
            try run(FarmBinary.path, ["verify", source, directory.file("nowhere")])
        } throws: { error in
            guard let failed = error as? CommandFailed else { return false }
            return failed.status == 64 && failed.standardError.contains("is not a folder")
        }
    }

    /// The farm's own output (chunks encoded by separate agents, stitched) must pass every check.
    @Test(.enabled(if: TestDatabase.isAvailable, "needs PostgreSQL: run make test, or set FARM_TEST_DATABASE_URL"))
    func theFarmsOutputPasses() async throws {
        let database = try await TestDatabase.create()
        let directory = try TemporaryDirectory("farm-verify-e2e")
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 8, width: 640, height: 360, gop: 50)
        let output = directory.file("hls")
        let status = try await InProcessFarm.transcode(source, into: output, database: database)
        await database.drop()
        try #require(status.state == "ready", "\(status.error ?? "")")
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(minimumPSNR: 35))
        #expect(report.failures == [], "\(report.text)")
        #expect(report.rungs.map(\.name) == ["360p", "240p"])
        #expect(report.rungs.allSatisfy { $0.frames == 200 && $0.segments == 4 })
    }
}
