import FarmFormats
import FarmProtocol
import Foundation

/// A running job's playlists: each rendition's EVENT media playlist lists its segments from the first up to the
/// first one missing, and the master appears once every rendition (audio included) can be started, so a player can
/// start while the job encodes. The stitch replaces them with the VOD playlists and final bandwidths.
///
/// A playlist without an end can be started once it lasts three target durations: RFC 8216 §6.3.3 tells clients
/// not to start closer than that to its end (Chromium refuses a shorter one with a demuxer error). So the master
/// waits for that much of every rendition, or for all of a shorter one.
package enum ProgressivePlaylists {
    /// What the codecs of each rendition are (from its init segment) and the audio's channel count.
    package struct InitInfo: Sendable, Equatable {
        package var codecs: String
        package var channels: Int?

        package init(codecs: String, channels: Int? = nil) {
            self.codecs = codecs
            self.channels = channels
        }
    }

    /// The files to write, media playlists before the master (which names them), paths relative to the job's
    /// folder. Pure.
    package static func files(
        _ progress: JobProgress,
        initInfo: [String: InitInfo]
    ) -> [(path: String, text: String)] {
        var files: [(path: String, text: String)] = []
        var ready: [String: Playlists.MediaRendition] = [:]
        let names = progress.renditions.map(\.name) + (progress.hasAudio ? ["audio"] : [])
        for name in names {
            guard progress.initSegments[name] != nil, let info = initInfo[name] else { continue }
            var prefix: [Playlists.Segment] = []
            let segments = progress.segments.filter { $0.rendition == name && $0.role == .segment }
                .sorted { ($0.segmentIndex ?? -1) < ($1.segmentIndex ?? -1) }
            for (offset, segment) in segments.enumerated() {
                guard segment.segmentIndex == offset else { break }
                prefix.append(
                    Playlists.Segment(
                        uri: (segment.path as NSString).lastPathComponent,
                        duration: segment.timeBase.seconds(segment.duration),
                        bytes: segment.bytes,
                        frames: segment.frames
                    )
                )
            }
            guard !prefix.isEmpty else { continue }
            files.append(
                (
                    "\(name)/playlist.m3u8",
                    Playlists.event(prefix, initURI: "init.mp4", plannedTarget: progress.targetDuration)
                )
            )
            let rendition = progress.renditions.first { $0.name == name }
            ready[name] = Playlists.MediaRendition(
                name: name,
                width: rendition?.width ?? 0,
                height: rendition?.height ?? 0,
                codecs: info.codecs,
                segments: prefix,
                channels: info.channels
            )
        }
        func canStart(_ name: String) -> Bool {
            guard let rendition = ready[name] else { return false }
            // The audio is one task: what is there is all of it.
            let complete = name == "audio" || rendition.segments.count >= progress.segmentCount
            return complete || rendition.totalDuration >= Double(3 * progress.targetDuration) - 0.001
        }
        if names.allSatisfy(canStart) {
            let video = progress.renditions.reversed().compactMap { ready[$0.name] }
            files.append(("master.m3u8", Playlists.master(video: video, audio: ready["audio"])))
        }
        return files
    }

    /// Reads the codecs from the init segments that exist, then writes `files` atomically.
    package static func write(_ progress: JobProgress) throws {
        let output = URL(fileURLWithPath: progress.outputDirectory)
        var initInfo: [String: InitInfo] = [:]
        for (name, path) in progress.initSegments {
            guard let bytes = try? [UInt8](Data(contentsOf: output.appendingPathComponent(path))),
                let codecs = MP4Boxes.codecString(initSegment: bytes)
            else { continue }
            initInfo[name] = InitInfo(
                codecs: codecs,
                channels: name == "audio" ? MP4Boxes.audioSpecificConfig(initSegment: bytes)?.channels : nil
            )
        }
        for (path, text) in self.files(progress, initInfo: initInfo) {
            try Data(text.utf8).write(to: output.appendingPathComponent(path), options: .atomic)
        }
    }
}
