import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// The stitcher's checks of the files themselves, before a job is published: what the agents reported is checked
/// in `Stitcher.stitch`; what the segment files hold, here.
extension Stitcher {
    /// How far the audio rendition's length may be from the source's: AAC priming and the last frame's padding
    /// (a frame is 1024 samples, 21 ms at 48 kHz), the tolerance `farm verify` uses too.
    static let audioTolerance = 0.05

    /// What a rung's segment files themselves hold, read from their `moof` boxes rather than taken from what the
    /// agents reported.
    struct Measurement {
        var samples = 0
        /// Nil when the init segment gives no timescale.
        var seconds: Double?
        /// For fMP4 video: each segment's I-frame playlist byte range (moof, mdat header, leading IDR), read from the
        /// same bytes, so no segment is read twice.
        var keyframeBytes: [String: Int64] = [:]
    }

    /// Reads every segment file once: the samples and their duration, decode times that follow each other exactly
    /// from file to file, and for fMP4 video the leading keyframe. A segment already remuxed to MPEG-TS by an earlier
    /// run of this stitch that was rolled back is counted from its accepted result.
    static func measure(
        _ segments: [OutputFile],
        rendition: String,
        isVideo: Bool,
        job: JobToStitch,
        output: URL
    ) throws -> Measurement {
        let timescale = job.initSegments[rendition].flatMap { path in
            FileManager.default.contents(atPath: output.appendingPathComponent(path).path).flatMap {
                MP4Boxes.timescale(initSegment: [UInt8]($0))
            }
        }
        var measurement = Measurement(seconds: timescale.map { _ in 0 })
        var expectedStart: Int64?
        for segment in segments {
            guard let data = FileManager.default.contents(atPath: output.appendingPathComponent(segment.path).path)
            else {
                let remuxed = output.appendingPathComponent(self.transportStreamPath(of: segment.path)).path
                if job.container == .ts, FileManager.default.fileExists(atPath: remuxed) {
                    measurement.samples += segment.frames
                    measurement.seconds? += segment.timeBase.seconds(segment.duration)
                    expectedStart = nil
                    continue
                }
                throw ContinuityError(
                    description: "\(segment.path) is missing from the output folder; the job's accepted results are "
                        + "incomplete, so it is not published"
                )
            }
            let bytes = [UInt8](data)
            let timing: MP4Boxes.FragmentTiming
            do {
                timing = try MP4Boxes.timing(ofFragment: bytes)
            } catch {
                throw ContinuityError(description: "\(segment.path) cannot be read as an fMP4 fragment: \(error)")
            }
            if let expectedStart, timing.baseDecodeTime != expectedStart {
                throw ContinuityError(
                    description: "\(segment.path) starts at decode time \(timing.baseDecodeTime), the segment before "
                        + "ends at \(expectedStart): a gap or overlap at a seam"
                )
            }
            // There is no edit list: a segment's first picture decodes at the frame's own time and is shown the
            // job's presentation delay later (0 for jobs planned before it, whose B-frames have negative offsets).
            if isVideo {
                try self.checkPresentation(timing, of: segment, job: job, timescale: timescale)
            } else if segment.segmentIndex == 0, let timescale {
                try self.checkSoundStart(timing, of: segment, job: job, sampleRate: timescale)
            }
            // Wrapping, not trapping, on a damaged tfdt: the next file's start then fails the comparison.
            expectedStart = timing.baseDecodeTime &+ timing.duration
            measurement.samples += timing.sampleCount
            if let timescale { measurement.seconds? += Double(timing.duration) / Double(timescale) }
            if isVideo, job.container == .fmp4 {
                measurement.keyframeBytes[segment.path] = try self.leadingKeyframeBytes(bytes, path: segment.path)
            }
        }
        return measurement
    }

    /// Samples the AAC encoder primes with (libavcodec's `aac`, the only audio encoder the farm uses): shown before
    /// the first sound, so a B-frame job's audio moves by its presentation delay less these.
    static let aacPriming: Int64 = 1024

    /// The audio's first segment starts where the job's presentation delay puts it (`PresentationDelay.audioShift`),
    /// so the sound is in step with the pictures: an agent that did not move it would make a job whose sound runs
    /// ahead of its pictures.
    private static func checkSoundStart(
        _ timing: MP4Boxes.FragmentTiming,
        of segment: OutputFile,
        job: JobToStitch,
        sampleRate: Int64
    ) throws {
        let expected = PresentationDelay.audioShift(
            delay: job.sourceInfo.presentationDelay ?? 0,
            timeBase: job.sourceInfo.timeBase,
            sampleRate: Int(sampleRate),
            priming: self.aacPriming
        )
        guard timing.baseDecodeTime == expected else {
            throw ContinuityError(
                description: "\(segment.path) starts the sound at \(timing.baseDecodeTime) samples, where the job's "
                    + "presentation delay puts it at \(expected): it would be out of step with the pictures"
            )
        }
    }

    /// A video segment's first picture is shown exactly the job's presentation delay after it decodes, and no picture
    /// before it decodes (`PresentationDelay`): what makes libavformat's players read the times browsers read.
    private static func checkPresentation(
        _ timing: MP4Boxes.FragmentTiming,
        of segment: OutputFile,
        job: JobToStitch,
        timescale: Int64?
    ) throws {
        let timeBase = job.sourceInfo.timeBase
        let delay = job.sourceInfo.presentationDelay ?? 0
        // The delay in the track's timescale: libavformat's mp4 muxer keeps the encoder's time base denominator
        // (doubled until it is at least 10000), so the delay is a whole number of its units.
        let expected = timescale.map { Int64(timeBase.num) &* $0 &* delay / max(Int64(timeBase.den), 1) } ?? delay
        guard timing.leadingCompositionOffset == expected else {
            throw ContinuityError(
                description:
                    "\(segment.path) shows its first picture \(timing.leadingCompositionOffset) units after it "
                    + "decodes, where the job's presentation delay is \(expected): its timeline is shifted"
            )
        }
        guard job.sourceInfo.presentationDelay == nil || timing.deepestNegativeCompositionOffset == 0 else {
            throw ContinuityError(
                description: "\(segment.path) shows a picture \(-timing.deepestNegativeCompositionOffset) units before "
                    + "it decodes: ffmpeg, mpv and VLC would show its pictures late"
            )
        }
    }
}
