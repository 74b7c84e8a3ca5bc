import FarmFormats
import FarmMedia
import FarmProtocol
import FarmTestSupport
import FarmVerify
import Foundation
import Testing

@testable import FarmCoordinator

/// The stitcher's last checks before a job becomes ready, against real segments encoded by libav: what the segment
/// files hold, not what the agents reported, must be the source's frames and the source's audio length.
@Suite("Stitcher refusals")
struct StitcherChecksTests {
    /// A 4 s clip encoded the way agents encode it (a video chunk per 2 s segment, the job's opening, and the audio
    /// track), and the stitch job for it.
    struct EncodedJob {
        var directory: TemporaryDirectory
        var source: String
        var encoded: String
        var job: JobToStitch

        /// A fresh output folder holding every encoded file, and the job pointed at it.
        func output(_ name: String) throws -> JobToStitch {
            let output = self.directory.file(name)
            try FileManager.default.copyItem(atPath: self.encoded, toPath: output)
            var job = self.job
            job.outputDirectory = output
            return job
        }
    }

    /// Plans the clip as the coordinator does (`JobPlanning`), extracts each task's copy and encodes it as an agent
    /// does, and puts the files where accepted results go. Tasks of the kinds in `ignoringDelay` are encoded as an
    /// agent of protocol version 1 would, without the job's presentation delay.
    static func encode(
        encoder: EncoderSettings = .default,
        ignoringDelay: Set<TaskSpec.Kind> = []
    ) throws -> EncodedJob {
        let directory = try TemporaryDirectory("farm-stitch")
        let source = directory.file("clip.mp4")
        try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240)
        let encoded = directory.file("encoded")
        let planned = try JobPlanning.plan(
            JobToPlan(
                id: 1,
                source: source,
                outputDirectory: encoded,
                settings: JobSettings(segmentDuration: 2, encoder: encoder, minimumChunks: 1)
            ),
            info: SourceProbe.probe(path: source)
        )
        var files: [OutputFile] = []
        for (index, task) in planned.tasks.enumerated() {
            let copy = directory.file("copy-\(index)")
            if let first = task.extract.firstPacket, let last = task.extract.lastPacket {
                try ChunkExtractor.extractVideo(
                    source: source,
                    streamIndex: task.extract.streamIndex,
                    firstPacket: first,
                    lastPacket: last,
                    output: copy
                )
            } else {
                try ChunkExtractor.extractStream(source: source, streamIndex: task.extract.streamIndex, output: copy)
            }
            let work = directory.file("work-\(index)")
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            var spec = task.spec
            if ignoringDelay.contains(spec.kind) { spec.presentationDelay = nil }
            let outputs = try ChunkEncoder(spec: spec, sourcePath: copy, workDirectory: work).run { _ in true }
            for file in outputs {
                let target = (encoded as NSString).appendingPathComponent(file.description.path)
                // Every chunk's task writes its rendition's init segment; the coordinator keeps the first.
                if file.description.role == .initSegment, FileManager.default.fileExists(atPath: target) { continue }
                try FileManager.default.createDirectory(
                    atPath: (target as NSString).deletingLastPathComponent,
                    withIntermediateDirectories: true
                )
                try FileManager.default.moveItem(atPath: file.localPath, toPath: target)
                files.append(file.description)
            }
        }
        let job = JobToStitch(
            id: 1,
            source: source,
            outputDirectory: encoded,
            sourceInfo: planned.sourceInfo,
            renditions: planned.renditions,
            segments: files.filter { $0.role == .segment },
            initSegments: Dictionary(
                uniqueKeysWithValues: files.filter { $0.role == .initSegment }.map { ($0.rendition, $0.path) }
            ),
            encoder: encoder
        )
        return EncodedJob(directory: directory, source: source, encoded: encoded, job: job)
    }

    /// The stitch must throw with `message` and leave no master playlist: the job fails instead of becoming ready.
    static func expectRefused(_ job: JobToStitch, _ message: String) {
        let error = #expect(throws: Stitcher.ContinuityError.self) { try Stitcher.stitch(job) }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: "\(job.outputDirectory)/master.m3u8"), "master.m3u8 written")
    }

    @Test func theRealOutputIsPublished() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        let job = try encoded.output("good")
        #expect(job.sourceInfo.frameCount == 100)
        try Stitcher.stitch(job)
        #expect(FileManager.default.fileExists(atPath: "\(job.outputDirectory)/master.m3u8"))
    }

    /// The sound is cut where the pictures are: each audio segment after the first starts with the AAC frame
    /// shown at the video segment's first picture (shown the job's delay after its start), not a frame before it.
    @Test func audioSegmentsStartWhereTheVideosPicturesDo() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        let output = encoded.encoded
        func timing(_ path: String) throws -> MP4Boxes.FragmentTiming {
            try MP4Boxes.timing(ofFragment: [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(output)/\(path)"))))
        }
        let videoInit = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(output)/240p/init.mp4")))
        let timescale = Double(try #require(MP4Boxes.timescale(initSegment: videoInit)))
        #expect(encoded.job.sourceInfo.segmentCount == 2)
        for index in 1..<encoded.job.sourceInfo.segmentCount {
            let name = String(format: "segment_%05d.m4s", index)
            let video = try timing("240p/\(name)")
            let shown = Double(video.baseDecodeTime + video.leadingCompositionOffset) / timescale
            let sound = Double(try timing("audio/\(name)").baseDecodeTime) / 48_000
            #expect(
                sound >= shown && sound < shown + 1024.0 / 48_000,
                "audio \(name) at \(sound) s, pictures at \(shown) s"
            )
        }
    }

    /// An agent that encoded one frame too many but reported the right counts (as an ignored edit list did): the
    /// counts the agents sent agree with the source, the files do not.
    @Test func oneFrameTooManyIsRefusedThoughTheReportsAgree() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        var job = try encoded.output("extra-frame")
        job.sourceInfo.frameCount -= 1
        for index in job.segments.indices where job.segments[index].rendition != "audio" {
            if job.segments[index].segmentIndex == job.sourceInfo.segmentCount - 1 { job.segments[index].frames -= 1 }
        }
        Self.expectRefused(job, "its segment files hold 100 frames, the source shows 99")
    }

    @Test func aMissingSegmentFileIsRefused() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        let job = try encoded.output("missing")
        try FileManager.default.removeItem(atPath: "\(job.outputDirectory)/240p/segment_00001.m4s")
        Self.expectRefused(job, "240p/segment_00001.m4s is missing from the output folder")
    }

    @Test func audioShorterThanTheSourceIsRefused() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        var job = try encoded.output("short-audio")
        job.sourceInfo.audioDurationSeconds = (job.sourceInfo.audioDurationSeconds ?? 0) + 0.5
        Self.expectRefused(job, "audio: its segment files last")
    }

    @Test func aGapBetweenSegmentFilesIsRefused() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        let job = try encoded.output("gap")
        // The second segment replaced by the first: its decode time repeats the first's instead of following it.
        let folder = "\(job.outputDirectory)/240p"
        try FileManager.default.removeItem(atPath: "\(folder)/segment_00001.m4s")
        try FileManager.default.copyItem(atPath: "\(folder)/segment_00000.m4s", toPath: "\(folder)/segment_00001.m4s")
        Self.expectRefused(job, "240p/segment_00001.m4s starts at decode time 0, the segment before ends at")
    }

    /// B-frame segments whose pictures are shown at another time than the job planned (an agent that skipped the
    /// presentation delay, or a job planned before it had one) are not published: players would show the pictures
    /// out of step with the sound.
    @Test func picturesShownOffTheJobsDelayAreRefused() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        let delay = try #require(encoded.job.sourceInfo.presentationDelay)
        #expect(delay > 0, "the default encoder settings use B-frames")
        var job = try encoded.output("other-delay")
        job.sourceInfo.presentationDelay = delay * 2
        Self.expectRefused(job, "shows its first picture")
        var legacy = try encoded.output("no-delay")
        legacy.sourceInfo.presentationDelay = nil
        Self.expectRefused(legacy, "where the job's presentation delay is 0")
    }

    /// A job planned before the presentation delay, whose agents encoded it as they did then (negative composition
    /// offsets, the sound unmoved), is still published: its retries and its stitch after an upgrade must go on.
    /// `farm verify` fails it for the negative offsets alone (one line per rung, naming the players they break),
    /// read from the fragments' boxes.
    @Test func aJobPlannedBeforeThePresentationDelayIsPublished() throws {
        let encoded = try Self.encode(ignoringDelay: [.video, .audio])
        defer { encoded.directory.remove() }
        var job = try encoded.output("legacy")
        job.sourceInfo.presentationDelay = nil
        try Stitcher.stitch(job)
        #expect(FileManager.default.fileExists(atPath: "\(job.outputDirectory)/master.m3u8"))
        let report = OutputVerifier.verify(source: encoded.source, hlsDirectory: job.outputDirectory)
        #expect(report.failures.count == job.renditions.count, "\(report.failures)")
        #expect(report.failures.allSatisfy { $0.contains("negative composition offsets") }, "\(report.failures)")
    }

    /// Segments of a new job with pictures shown before they decode (its first picture on time) are not published:
    /// ffmpeg, mpv and VLC would show its pictures late.
    @Test func negativeCompositionOffsetsInANewJobAreRefused() throws {
        let encoded = try Self.encode(ignoringDelay: [.video, .audio])
        defer { encoded.directory.remove() }
        var job = try encoded.output("negative")
        job.sourceInfo.presentationDelay = 0
        Self.expectRefused(job, "shows a picture")
    }

    /// An audio track not moved by the job's presentation delay (an agent that ignored it) would play ahead of the
    /// pictures: refused, naming where the sound should start.
    @Test func soundNotMovedWithThePicturesIsRefused() throws {
        let encoded = try Self.encode(ignoringDelay: [.audio])
        defer { encoded.directory.remove() }
        let job = try encoded.output("early-sound")
        let delay = try #require(job.sourceInfo.presentationDelay)
        let shift = PresentationDelay.audioShift(
            delay: delay,
            timeBase: job.sourceInfo.timeBase,
            sampleRate: 48_000,
            priming: Stitcher.aacPriming
        )
        #expect(shift > 0)
        Self.expectRefused(
            job,
            "audio/segment_00000.m4s starts the sound at 0 samples, where the job's "
                + "presentation delay puts it at \(shift)"
        )
    }

    /// Audio that is not what the job promises players (here the job asks for mono, the files hold stereo) is not
    /// published, naming both.
    @Test func audioInAnotherFormatThanTheJobsIsRefused() throws {
        let encoded = try Self.encode()
        defer { encoded.directory.remove() }
        var job = try encoded.output("mono")
        job.encoder.audioChannels = 1
        Self.expectRefused(
            job,
            "audio/init.mp4 holds mp4a.40.2, 48000 Hz, 2 channels; the job delivers mp4a.40.2 (AAC-LC), 48000 Hz, "
                + "1 channels"
        )
    }

    /// A job that asks for mono audio gets CHANNELS="1": the count is read from the init segment the agents made.
    @Test(arguments: [2, 1])
    func theMasterPlaylistsChannelsAreReadFromTheAudio(channels: Int) throws {
        var settings = EncoderSettings.default
        settings.audioChannels = channels
        let encoded = try Self.encode(encoder: settings)
        defer { encoded.directory.remove() }
        let job = try encoded.output("channels")
        let initSegment = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(job.outputDirectory)/audio/init.mp4")))
        let entry = try #require(MP4Boxes.audioSpecificConfig(initSegment: initSegment))
        #expect(entry.objectType == 2 && entry.channels == channels && entry.sampleRate == 48_000)
        try Stitcher.stitch(job)
        let master = try String(contentsOfFile: "\(job.outputDirectory)/master.m3u8", encoding: .utf8)
        #expect(master.contains(",CHANNELS=\"\(channels)\",URI=\"audio/playlist.m3u8\""), "\(master)")
    }
}
