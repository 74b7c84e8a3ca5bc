import FarmCoordinator
import FarmFormats
import FarmMedia
import FarmTestSupport
import FarmVerify
import Foundation
import Testing

/// Splitting must not cost picture quality or bytes: a clip cut into several chunks (each encoded alone, by
/// whichever agent leased it) is compared with the same clip encoded as one chunk, with the same settings.
@Suite("Split versus continuous encode", .requiresPostgreSQL, .farmTimeLimit)
struct QualityParityTests {
    @Test func chunkedEncodeMatchesOneContinuousEncodeInPSNRAndSize() async throws {
        try await Fixtures.withClip("farm-parity", seconds: 32, width: 640, height: 360, gop: 50) { directory, source in
            let continuous = directory.file("continuous")
            let split = directory.file("split")

            let (whole, chunked) = try await InProcessFarm.run(agents: 2) { store, _ in
                // The planner's longest chunk is 60 s: with a minimum of one chunk and no opening chunks, the 32 s
                // clip is encoded in one go.
                let wholeJob = try await store.submit(
                    source: source,
                    outputDirectory: continuous,
                    settings: JobSettings(segmentDuration: 2, minimumChunks: 1, openingChunks: 0)
                )
                let splitJob = try await store.submit(
                    source: source,
                    outputDirectory: split,
                    settings: JobSettings(segmentDuration: 2, minimumChunks: 6)
                )
                return (
                    try await InProcessFarm.waitForJob(store, wholeJob, timeout: .seconds(300)),
                    try await InProcessFarm.waitForJob(store, splitJob, timeout: .seconds(300))
                )
            }
            try #require(whole.state == .ready, "\(whole.error ?? "")")
            try #require(chunked.state == .ready, "\(chunked.error ?? "")")
            // One audio task plus the video chunks.
            #expect(whole.tasksTotal == 2)
            #expect(chunked.tasksTotal >= 6, "the clip was cut into \(chunked.tasksTotal - 1) chunks")

            let wholeReport = OutputVerifier.verify(source: source, hlsDirectory: continuous, options: .init())
            let splitReport = OutputVerifier.verify(source: source, hlsDirectory: split, options: .init())
            #expect(wholeReport.failures == [], "\(wholeReport.text)")
            #expect(splitReport.failures == [], "\(splitReport.text)")
            try #require(wholeReport.rungs.map(\.name) == splitReport.rungs.map(\.name))
            for (one, many) in zip(wholeReport.rungs, splitReport.rungs) {
                let onePSNR = try #require(one.psnrY)
                let manyPSNR = try #require(many.psnrY)
                #expect(
                    abs(onePSNR - manyPSNR) <= 0.2,
                    "\(one.name): PSNR-Y \(manyPSNR) dB split, \(onePSNR) dB continuous"
                )
                let oneBytes = try Self.videoBytes(continuous + "/" + one.name)
                let manyBytes = try Self.videoBytes(split + "/" + many.name)
                let ratio = Double(manyBytes) / Double(oneBytes)
                #expect(abs(ratio - 1) <= 0.03, "\(one.name): \(manyBytes) bytes split, \(oneBytes) continuous")
            }
        }
    }

    /// The bytes of a rung: its init segment and media segments.
    static func videoBytes(_ folder: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasSuffix(".m3u8") }.reduce(0) {
            let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/" + $1)
            return $0 + ((attributes[.size] as? Int) ?? 0)
        }
    }
}
