import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// Checks a finished job's segments and writes its playlists.
///
/// Refuses to publish a stream with a hole: every rung must have every segment, with timestamps that follow each
/// other exactly and the same boundaries as every other rung, and the frame count of the source. The poster and
/// thumbnails are made while the job encodes (`ThumbnailService`); a job is stitched only once they are there.
package enum Stitcher {
    package struct ContinuityError: Error, CustomStringConvertible {
        package var description: String
    }

    /// A stitch that throws fails its job; the janitor's `removePartialOutput` then removes what it wrote.
    package static func stitch(_ job: JobToStitch) throws {
        let output = URL(fileURLWithPath: job.outputDirectory)
        let info = job.sourceInfo
        var videoRenditions: [Playlists.MediaRendition] = []
        var referenceStarts: [Int64]?
        for rendition in job.renditions {
            let segments = job.segments.filter { $0.rendition == rendition.name }.sorted {
                $0.segmentIndex! < $1.segmentIndex!
            }
            guard segments.count == info.segmentCount else {
                throw ContinuityError(
                    description: "\(rendition.name) has \(segments.count) segments, the plan has \(info.segmentCount)"
                )
            }
            try self.checkContinuity(segments, rendition: rendition.name)
            let starts = segments.map(\.startPTS)
            if let referenceStarts, referenceStarts != starts {
                throw ContinuityError(description: "\(rendition.name) has other segment boundaries than the first rung")
            }
            referenceStarts = starts
            let frames = segments.reduce(0) { $0 + $1.frames }
            guard frames == info.frameCount else {
                throw ContinuityError(
                    description: "\(rendition.name) has \(frames) frames, the source has \(info.frameCount)"
                )
            }
            let measured = try self.measure(
                segments,
                rendition: rendition.name,
                isVideo: true,
                job: job,
                output: output
            )
            guard measured.samples == info.frameCount else {
                throw ContinuityError(
                    description: "\(rendition.name): its segment files hold \(measured.samples) frames, the source "
                        + "shows \(info.frameCount); the output would not be the source's frames, so it is not published"
                )
            }
            videoRenditions.append(
                try self.writeMediaPlaylist(
                    name: rendition.name,
                    width: rendition.width,
                    height: rendition.height,
                    segments: segments,
                    keyframeBytes: measured.keyframeBytes,
                    job: job,
                    output: output
                )
            )
        }
        var audio: Playlists.MediaRendition?
        if info.hasAudio {
            let segments = job.segments.filter { $0.rendition == "audio" }.sorted {
                $0.segmentIndex! < $1.segmentIndex!
            }
            guard !segments.isEmpty else { throw ContinuityError(description: "the audio track has no segments") }
            // Cut at the video's segment starts, so never more segments than the video (fewer when the sound ends
            // before the pictures do: its length is checked below).
            guard segments.count <= info.segmentCount else {
                throw ContinuityError(
                    description: "the audio track has \(segments.count) segments where the video has "
                        + "\(info.segmentCount): it is not cut at the video's segment starts"
                )
            }
            try self.checkContinuity(segments, rendition: "audio")
            let measured = try self.measure(segments, rendition: "audio", isVideo: false, job: job, output: output)
            if let expected = info.audioDurationSeconds, let seconds = measured.seconds,
                abs(seconds - expected) > Self.audioTolerance
            {
                throw ContinuityError(
                    description:
                        "audio: its segment files last \(String(format: "%.3f", seconds)) s, the source's audio "
                        + "\(String(format: "%.3f", expected)) s from the first video frame (tolerance "
                        + "\(Self.audioTolerance) s); the audio would be cut short or out of step, so it is not published"
                )
            }
            audio = try self.writeMediaPlaylist(
                name: "audio",
                width: 0,
                height: 0,
                segments: segments,
                keyframeBytes: [:],
                job: job,
                output: output
            )
        }
        let master = Playlists.master(
            video: videoRenditions.reversed(),
            audio: audio,
            version: job.container == .ts ? 4 : 7
        )
        try self.writeAtomically(master, to: output.appendingPathComponent("master.m3u8"))
        if job.container == .ts {
            // The fMP4 segments live on as .ts; each init.mp4 stays (a few hundred bytes) so that a rerun of this
            // stitch after a rollback can still read the codecs.
            for segment in job.segments {
                try? FileManager.default.removeItem(at: output.appendingPathComponent(segment.path))
            }
        }
        // Uploads of refused or abandoned results that were never cleaned (a coordinator died mid-upload).
        try? FileManager.default.removeItem(at: output.appendingPathComponent(".staging"))
    }

    private static func checkContinuity(_ segments: [OutputFile], rendition: String) throws {
        for (offset, segment) in segments.enumerated() where segment.segmentIndex != offset {
            throw ContinuityError(
                description: "\(rendition) is missing segment \(offset) (next is \(segment.segmentIndex ?? -1))"
            )
        }
        for (previous, next) in zip(segments, segments.dropFirst())
        where previous.startPTS + previous.duration != next.startPTS {
            throw ContinuityError(
                description: "\(rendition) segment \(next.segmentIndex!) starts at \(next.startPTS) but the one before "
                    + "ends at \(previous.startPTS + previous.duration): a gap or overlap at a seam"
            )
        }
    }

    private static func writeMediaPlaylist(
        name: String,
        width: Int,
        height: Int,
        segments: [OutputFile],
        keyframeBytes: [String: Int64],
        job: JobToStitch,
        output: URL
    ) throws -> Playlists.MediaRendition {
        guard let initPath = job.initSegments[name] else {
            throw ContinuityError(description: "\(name) has no init segment")
        }
        let initBytes = try [UInt8](Data(contentsOf: output.appendingPathComponent(initPath)))
        guard let codecs = MP4Boxes.codecString(initSegment: initBytes) else {
            throw ContinuityError(description: "\(name)/init.mp4 has no avcC or esds box to read the codec from")
        }
        let isVideo = name != "audio"
        var channels: Int?
        if !isVideo {
            // What players are promised (the master's CHANNELS, the job's settings), checked in the file itself.
            let entry = MP4Boxes.audioSpecificConfig(initSegment: initBytes)
            let expected = (codecs: "mp4a.40.2", channels: job.encoder.audioChannels, rate: job.encoder.audioSampleRate)
            guard let entry, codecs == expected.codecs, entry.channels == expected.channels,
                entry.sampleRate == expected.rate
            else {
                throw ContinuityError(
                    description: "audio/init.mp4 holds \(codecs), \(entry?.sampleRate ?? 0) Hz, "
                        + "\(entry?.channels ?? 0) channels; the job delivers \(expected.codecs) (AAC-LC), "
                        + "\(expected.rate) Hz, \(expected.channels) channels, so it is not published"
                )
            }
            channels = entry.channels
        }
        let ts = job.container == .ts
        let playlistSegments = try segments.map { segment in
            let (path, bytes) =
                ts
                ? try self.transportStream(of: segment.path, initPath: initPath, output: output)
                : (segment.path, segment.bytes)
            // fMP4 segments were read once already (`measure`); MPEG-TS ones are new files.
            var keyframe = isVideo ? keyframeBytes[path] : nil
            if isVideo, keyframe == nil {
                let file = try [UInt8](Data(contentsOf: output.appendingPathComponent(path)))
                keyframe = try self.leadingKeyframeBytes(file, path: path)
            }
            return Playlists.Segment(
                uri: (path as NSString).lastPathComponent,
                duration: segment.timeBase.seconds(segment.duration),
                bytes: bytes,
                frames: segment.frames,
                keyframeBytes: keyframe
            )
        }
        // MPEG-TS segments start independently: no init segment to map.
        let initURI = ts ? nil : "init.mp4"
        let folder = output.appendingPathComponent(name)
        try self.writeAtomically(
            Playlists.media(playlistSegments, initURI: initURI),
            to: folder.appendingPathComponent("playlist.m3u8")
        )
        if isVideo {
            try self.writeAtomically(
                Playlists.iFrames(playlistSegments, initURI: initURI),
                to: folder.appendingPathComponent("iframes.m3u8")
            )
        }
        return Playlists.MediaRendition(
            name: name,
            width: width,
            height: height,
            codecs: codecs,
            segments: playlistSegments,
            channels: channels
        )
    }

    /// The I-frame playlist's byte range of a segment: from its start to the end of its leading IDR (for MPEG-TS,
    /// the PAT and PMT then the packets of the IDR's PES).
    static func leadingKeyframeBytes(_ bytes: [UInt8], path: String) throws -> Int64 {
        let keyframe = try LeadingKeyframe(segment: bytes, transportStream: path.hasSuffix(".ts"))
        guard keyframe.isKeyframe, keyframe.end <= bytes.count else {
            throw ContinuityError(
                description: "\(path) does not start with a whole IDR frame, so it cannot be listed in an I-frame "
                    + "playlist; the agent that encoded it must force a keyframe at every segment start"
            )
        }
        return Int64(keyframe.end)
    }

    /// The `.ts` beside an agent's `.m4s` segment, remuxed from it now, or by an earlier run of this stitch that
    /// was rolled back after it had removed the `.m4s`. Returns its path (relative to `output`) and size.
    private static func transportStream(of path: String, initPath: String, output: URL) throws -> (String, Int64) {
        let tsPath = self.transportStreamPath(of: path)
        let fragmented = output.appendingPathComponent(path).path
        let transport = output.appendingPathComponent(tsPath).path
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: fragmented) || !fileManager.fileExists(atPath: transport) {
            try TransportStreamRemux.remux(
                initSegment: output.appendingPathComponent(initPath).path,
                segment: fragmented,
                output: transport
            )
        }
        guard let size = (try fileManager.attributesOfItem(atPath: transport))[.size] as? Int else {
            throw ContinuityError(description: "\(tsPath) has no size; check the output folder")
        }
        return (tsPath, Int64(size))
    }

    static func transportStreamPath(of path: String) -> String {
        (path as NSString).deletingPathExtension + ".ts"
    }

    private static func writeAtomically(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url, options: .atomic)
    }
}

extension Stitcher {
    /// Removes what a failed or cancelled job left in its output folder: the files its accepted results published
    /// (paths relative to the folder), what a stitch that failed part way wrote (playlists, poster, thumbnails),
    /// uploads still staged, then the folders this left empty. Files the farm did not write are left alone.
    package static func removePartialOutput(outputDirectory: String, publishedFiles: [String]) throws {
        let output = URL(fileURLWithPath: outputDirectory)
        let fileManager = FileManager.default
        try? fileManager.removeItem(at: output.appendingPathComponent(".staging"))
        let renditions = Set(publishedFiles.compactMap { $0.split(separator: "/").dropLast().first.map(String.init) })
        // What a stitch writes besides the agents' files: playlists, I-frame playlists, thumbnails, and the MPEG-TS
        // copies of the segments (`--container ts`).
        let stitched =
            ["master.m3u8"] + JobThumbnails.names
            + renditions.sorted().flatMap { ["\($0)/playlist.m3u8", "\($0)/iframes.m3u8"] }
            + publishedFiles.filter { $0.hasSuffix(".m4s") }.map(self.transportStreamPath(of:)).flatMap {
                [$0, $0 + ".joined.mp4"]  // TransportStreamRemux's scratch file, left by a crash mid-remux
            }
        var folders = Set<String>()
        for path in publishedFiles + stitched {
            let file = output.appendingPathComponent(path)
            var isFolder: ObjCBool = false
            if fileManager.fileExists(atPath: file.path, isDirectory: &isFolder), !isFolder.boolValue {
                try fileManager.removeItem(at: file)
            }
            folders.insert(file.deletingLastPathComponent().path)
        }
        for folder in folders.sorted(by: >) + [output.path] {
            if let contents = try? fileManager.contentsOfDirectory(atPath: folder), contents.isEmpty {
                try fileManager.removeItem(atPath: folder)
            }
        }
    }
}
