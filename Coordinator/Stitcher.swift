import FarmMedia
import FarmProtocol
import Foundation

/// Checks a finished job's segments and writes its playlists.
///
/// Refuses to publish a stream with a hole: every rung must have every segment, with timestamps that follow each
/// other exactly and the same boundaries as every other rung, and the frame count of the source.
package enum Stitcher {
    package struct ContinuityError: Error, CustomStringConvertible {
        package var description: String
    }

    package static func stitch(_ job: JobStore.JobToStitch) throws {
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
            videoRenditions.append(
                try self.writeMediaPlaylist(
                    name: rendition.name,
                    width: rendition.width,
                    height: rendition.height,
                    segments: segments,
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
            try self.checkContinuity(segments, rendition: "audio")
            audio = try self.writeMediaPlaylist(
                name: "audio",
                width: 0,
                height: 0,
                segments: segments,
                job: job,
                output: output
            )
        }
        let master = Playlists.master(video: videoRenditions.reversed(), audio: audio)
        try self.writeAtomically(master, to: output.appendingPathComponent("master.m3u8"))
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
        job: JobStore.JobToStitch,
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
        let playlistSegments = try segments.map { segment in
            try Playlists.Segment(
                uri: (segment.path as NSString).lastPathComponent,
                duration: segment.timeBase.seconds(segment.duration),
                bytes: segment.bytes,
                frames: segment.frames,
                keyframeBytes: isVideo ? self.leadingKeyframeBytes(segment.path, output: output) : nil
            )
        }
        let folder = output.appendingPathComponent(name)
        try self.writeAtomically(Playlists.media(playlistSegments), to: folder.appendingPathComponent("playlist.m3u8"))
        if isVideo {
            try self.writeAtomically(
                Playlists.iFrames(playlistSegments),
                to: folder.appendingPathComponent("iframes.m3u8")
            )
        }
        return Playlists.MediaRendition(
            name: name,
            width: width,
            height: height,
            codecs: codecs,
            segments: playlistSegments
        )
    }

    /// The I-frame playlist's byte range of a segment: from its start to the end of its leading IDR (for MPEG-TS,
    /// the PAT and PMT then the packets of the IDR's PES).
    private static func leadingKeyframeBytes(_ path: String, output: URL) throws -> Int64 {
        let bytes = try [UInt8](Data(contentsOf: output.appendingPathComponent(path)))
        let keyframe: (end: Int, isKeyframe: Bool)
        if path.hasSuffix(".ts") {
            let pes = try MPEGTSPackets.leadingPES(bytes)
            keyframe = (pes.end, pes.isRandomAccess)
        } else {
            let sample = try MP4Boxes.leadingSample(ofFragment: bytes)
            keyframe = (sample.data.upperBound, sample.isSync)
        }
        guard keyframe.isKeyframe, keyframe.end <= bytes.count else {
            throw ContinuityError(
                description: "\(path) does not start with a whole IDR frame, so it cannot be listed in an I-frame "
                    + "playlist; the agent that encoded it must force a keyframe at every segment start"
            )
        }
        return Int64(keyframe.end)
    }

    private static func writeAtomically(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url, options: .atomic)
    }
}

extension Stitcher {
    /// Removes what a failed or cancelled job left in its output folder: the files its accepted results published
    /// (paths relative to the folder), uploads still staged, then the folders this left empty. Files the farm did
    /// not write are left alone.
    package static func removePartialOutput(outputDirectory: String, publishedFiles: [String]) throws {
        let output = URL(fileURLWithPath: outputDirectory)
        let fileManager = FileManager.default
        try? fileManager.removeItem(at: output.appendingPathComponent(".staging"))
        var folders = Set<String>()
        for path in publishedFiles {
            let file = output.appendingPathComponent(path)
            if fileManager.fileExists(atPath: file.path) { try fileManager.removeItem(at: file) }
            folders.insert(file.deletingLastPathComponent().path)
        }
        for folder in folders.sorted(by: >) + [output.path] {
            if let contents = try? fileManager.contentsOfDirectory(atPath: folder), contents.isEmpty {
                try fileManager.removeItem(atPath: folder)
            }
        }
    }

    /// Removes chunk sources a coordinator extracted but never deleted (it died while sending them) from
    /// `scratchDirectory`; a live extraction is minutes old at most, so only files older than `age` go.
    package static func removeOrphanedSources(scratchDirectory: String, olderThan age: TimeInterval) -> Int {
        let fileManager = FileManager.default
        guard let names = try? fileManager.contentsOfDirectory(atPath: scratchDirectory) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix("farm-source-") && name.hasSuffix(".nut") {
            let path = (scratchDirectory as NSString).appendingPathComponent(name)
            guard let modified = (try? fileManager.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
                Date().timeIntervalSince(modified) > age
            else { continue }
            if (try? fileManager.removeItem(atPath: path)) != nil { removed += 1 }
        }
        return removed
    }
}
