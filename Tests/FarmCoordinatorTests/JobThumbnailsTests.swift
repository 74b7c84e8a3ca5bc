import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@testable import FarmCoordinator

@Suite("Job thumbnails")
struct JobThumbnailsTests {
    static func job(source: String, output: String, topWidth: Int? = nil) -> JobForThumbnails {
        JobForThumbnails(
            id: 1,
            source: source,
            outputDirectory: output,
            sourceInfo: JobSourceInfo(
                timeBase: Rational(1, 12800),
                frameRate: Rational(25, 1),
                originPTS: 0,
                frameCount: 0,
                segmentCount: 0,
                durationSeconds: 6,
                hasAudio: false,
                videoCodec: "h264"
            ),
            topRenditionWidth: topWidth
        )
    }

    /// A source that can no longer be read fails with the reason and writes nothing: the job fails instead of
    /// becoming ready without its poster.
    @Test func unreadableSourceFailsWithTheReasonAndWritesNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("gone.mp4")
        try Fixtures.makeGarbage(at: source)
        let output = directory.file("out")
        let error = try #require(throws: JobThumbnails.Failure.self) {
            try JobThumbnails.write(Self.job(source: source, output: output))
        }
        #expect(error.description.contains("making the poster and thumbnails failed"))
        #expect(error.description.contains("gone.mp4: not a readable video file"))
        for name in JobThumbnails.names {
            #expect(!FileManager.default.fileExists(atPath: "\(output)/\(name)"), "\(name) was written")
        }
    }

    @Test func readableSourceGetsItsThreeFilesAndAPosterNoWiderThanTheTopRung() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 6, width: 320, height: 240, audio: false)
        let output = directory.file("out")
        try JobThumbnails.write(Self.job(source: source, output: output))
        #expect(JobThumbnails.names == ["poster.jpg", "thumbnails.jpg", "thumbnails.vtt"])
        for name in JobThumbnails.names {
            #expect(FileManager.default.fileExists(atPath: "\(output)/\(name)"), "\(name) is missing")
        }
        let poster = try Probe.videoSize("\(output)/poster.jpg")
        #expect(poster.width == 320 && poster.height == 240)
        let narrower = directory.file("narrower")
        try JobThumbnails.write(Self.job(source: source, output: narrower, topWidth: 160))
        let narrowPoster = try Probe.videoSize("\(narrower)/poster.jpg")
        #expect(narrowPoster.width == 160 && narrowPoster.height == 120)
        JobThumbnails.remove(from: narrower)
        #expect(try FileManager.default.contentsOfDirectory(atPath: narrower).isEmpty)
    }
}
