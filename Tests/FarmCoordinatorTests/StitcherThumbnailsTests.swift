import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import Foundation
import Testing

@testable import FarmCoordinator

@Suite("Stitcher thumbnails")
struct StitcherThumbnailsTests {
    static func job(source: String, output: String) -> JobToStitch {
        JobToStitch(
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
            renditions: [],
            segments: [],
            initSegments: [:]
        )
    }

    /// A source that can no longer be read at stitch time fails the stitch with the reason, before the master
    /// playlist exists: the job fails instead of becoming ready without its poster.
    @Test func unreadableSourceFailsTheStitchBeforeTheMasterPlaylist() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("gone.mp4")
        try Fixtures.makeGarbage(at: source)
        let output = directory.file("out")
        let error = try #require(throws: Stitcher.ThumbnailError.self) {
            try Stitcher.stitch(Self.job(source: source, output: output))
        }
        #expect(error.description.contains("making the poster and thumbnails failed"))
        #expect(error.description.contains("gone.mp4: not a readable video file"))
        for name in ["master.m3u8", "poster.jpg", "thumbnails.jpg", "thumbnails.vtt"] {
            #expect(!FileManager.default.fileExists(atPath: "\(output)/\(name)"), "\(name) was written")
        }
    }

    @Test func readableSourceGetsItsThumbnailsBesideTheMasterPlaylist() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 6, width: 320, height: 240, audio: false)
        let output = directory.file("out")
        try Stitcher.stitch(Self.job(source: source, output: output))
        for name in ["master.m3u8", "poster.jpg", "thumbnails.jpg", "thumbnails.vtt"] {
            #expect(FileManager.default.fileExists(atPath: "\(output)/\(name)"), "\(name) is missing")
        }
        let poster = try Probe.videoSize("\(output)/poster.jpg")
        #expect(poster.width == 320 && poster.height == 240)
    }
}
