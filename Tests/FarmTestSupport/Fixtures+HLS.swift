import FarmFormats
import FarmMedia
import FarmVerify
import Foundation

/// HLS outputs made by ffmpeg's fMP4 segmenter, with the playlists rewritten in the form farm's Stitcher writes
/// (Coordinator/Playlists.swift): test material for `farm verify`, independent of the farm's own encoder.
package enum HLSFixture {
    package struct Rung: Sendable {
        package var name: String
        package var width: Int
        package var height: Int
        package var gop: Int
        /// x264 open GOPs (with B-frames): keyframes after the first are I frames but not IDRs.
        package var openGOP: Bool

        package init(name: String, width: Int, height: Int, gop: Int = 25, openGOP: Bool = false) {
            self.name = name
            self.width = width
            self.height = height
            self.gop = gop
            self.openGOP = openGOP
        }
    }

    package static let rungs = [
        Rung(name: "240p", width: 320, height: 240), Rung(name: "120p", width: 160, height: 120),
    ]

    /// A 4 s, 320x240, 25 fps source with a keyframe every second and (optionally) AAC audio.
    package static func makeSource(_ directory: TemporaryDirectory, audio: Bool = true) throws -> String {
        let source = directory.file(audio ? "source.mp4" : "silent.mp4")
        try Fixtures.makeClip(at: source, seconds: 4, width: 320, height: 240, frameRate: 25, gop: 25, audio: audio)
        return source
    }

    /// master.m3u8 with every rung, its I-frame playlist and the audio group; BANDWIDTH and AVERAGE-BANDWIDTH
    /// measured from the files as the Stitcher measures them.
    package static func makeOutput(
        source: String,
        at output: String,
        rungs: [Rung] = Self.rungs,
        audio: Bool = true
    )
        throws
    {
        var master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        var audioCodec: String?
        var audioBitrates = (peak: 0, average: 0)
        if audio {
            try self.segment(source: source, into: output + "/audio", rung: nil)
            audioCodec = try self.codec(output + "/audio/init.mp4")
            audioBitrates = try self.bitrates(folder: output + "/audio")
            master.append(
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
                    + "URI=\"audio/playlist.m3u8\""
            )
        }
        var iFrameStreams: [String] = []
        for rung in rungs {
            let folder = output + "/" + rung.name
            try self.segment(source: source, into: folder, rung: rung)
            let codec = try self.codec(folder + "/init.mp4")
            let codecs = [codec] + (audioCodec.map { [$0] } ?? [])
            let video = try self.bitrates(folder: folder)
            master.append(
                "#EXT-X-STREAM-INF:BANDWIDTH=\(video.peak + audioBitrates.peak),"
                    + "AVERAGE-BANDWIDTH=\(video.average + audioBitrates.average),"
                    + "CODECS=\"\(codecs.joined(separator: ","))\",RESOLUTION=\(rung.width)x\(rung.height),"
                    + "FRAME-RATE=25.000\(audio ? ",AUDIO=\"audio\"" : "")"
            )
            master.append("\(rung.name)/playlist.m3u8")
            try self.writeIFramePlaylist(folder: folder)
            let iFrames = try self.bitrates(folder: folder, playlist: "iframes.m3u8")
            iFrameStreams.append(
                "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\(iFrames.peak),AVERAGE-BANDWIDTH=\(iFrames.average),"
                    + "CODECS=\"\(codec)\",RESOLUTION=\(rung.width)x\(rung.height),URI=\"\(rung.name)/iframes.m3u8\""
            )
        }
        try ((master + iFrameStreams).joined(separator: "\n") + "\n").write(
            toFile: output + "/master.m3u8",
            atomically: true,
            encoding: .utf8
        )
    }

    /// RFC 8216 peak and average bit rates of a media playlist's segments (their byte ranges, when it has them).
    package static func bitrates(folder: String, playlist: String = "playlist.m3u8") throws -> (peak: Int, average: Int)
    {
        let media = try HLSMediaPlaylist(parsing: String(contentsOfFile: folder + "/" + playlist, encoding: .utf8))
        let sized = try media.segments.map { segment in
            let size = try FileManager.default.attributesOfItem(atPath: folder + "/" + segment.uri)[.size] as? Int
            return (duration: segment.duration, bytes: segment.byteRange?.count ?? size ?? 0)
        }
        let target = Double(media.targetDuration ?? 0)
        return (SegmentBitrate.peak(sized, targetDuration: target), SegmentBitrate.average(sized))
    }

    /// Segments one stream of `source` into `folder` (fMP4, 1 s segments), then rewrites ffmpeg's playlist as farm
    /// writes it. Video without B-frames: ffmpeg's HLS muxer writes no edit list, so B-frames would start the video
    /// two frames late against the audio (a real desync that `farm verify` reports).
    /// `audioCodec`: the audio encoder's ffmpeg arguments (the farm's AAC-LC stereo at the source's 48 kHz, unless
    /// a test wants another format).
    package static func segment(
        source: String,
        into folder: String,
        rung: Rung?,
        audioCodec: [String] = ["-c:a", "aac", "-b:a", "128k"]
    ) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var arguments = ["-hide_banner", "-loglevel", "error", "-y", "-i", source]
        if let rung {
            arguments += [
                "-map", "0:v", "-c:v", "libx264", "-preset", "veryfast", "-g", "\(rung.gop)",
                "-keyint_min", "\(rung.gop)", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                "-s", "\(rung.width)x\(rung.height)",
            ]
            arguments += rung.openGOP ? ["-bf", "3", "-x264-params", "open-gop=1"] : ["-bf", "0"]
        } else {
            arguments += ["-map", "0:a"] + audioCodec
        }
        arguments += [
            "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", folder + "/segment_%05d.m4s", "-hls_playlist_type", "vod",
            folder + "/ffmpeg.m3u8",
        ]
        try run("ffmpeg", arguments)
        let parsed = try HLSMediaPlaylist(parsing: String(contentsOfFile: folder + "/ffmpeg.m3u8", encoding: .utf8))
        try FileManager.default.removeItem(atPath: folder + "/ffmpeg.m3u8")
        try self.writeMediaPlaylist(parsed.segments, to: folder + "/playlist.m3u8")
    }

    /// `iframes.m3u8` beside a rendition's `playlist.m3u8`, as Coordinator/Playlists.swift writes it: one entry per
    /// segment, the byte range from the segment's start to the end of its first sample.
    package static func writeIFramePlaylist(folder: String) throws {
        let media = try HLSMediaPlaylist(parsing: String(contentsOfFile: folder + "/playlist.m3u8", encoding: .utf8))
        let target = Int((media.segments.map(\.duration).max() ?? 1).rounded(.up))
        var lines = [
            "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:\(target)", "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY", "#EXT-X-INDEPENDENT-SEGMENTS",
            "#EXT-X-MAP:URI=\"init.mp4\"",
        ]
        for segment in media.segments {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + segment.uri)))
            let sample = try MP4Boxes.leadingSample(ofFragment: bytes)
            lines.append(String(format: "#EXTINF:%.6f,", segment.duration))
            lines.append("#EXT-X-BYTERANGE:\(sample.data.upperBound)@0")
            lines.append(segment.uri)
        }
        lines.append("#EXT-X-ENDLIST")
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: folder + "/iframes.m3u8",
            atomically: true,
            encoding: .utf8
        )
    }

    /// The RFC 6381 codec of an init segment, as the Stitcher writes it into CODECS.
    package static func codec(_ initPath: String) throws -> String {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: initPath)))
        guard let codec = MP4Boxes.codecString(initSegment: bytes) else {
            throw CommandFailed(command: "codec of \(initPath)", status: 0, standardError: "no avcC or esds box")
        }
        return codec
    }

    /// A VOD media playlist as Coordinator/Playlists.swift writes it.
    package static func writeMediaPlaylist(_ segments: [HLSMediaPlaylist.Segment], to path: String) throws {
        let target = Int((segments.map(\.duration).max() ?? 1).rounded(.up))
        var lines = [
            "#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:\(target)", "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-MAP:URI=\"init.mp4\"",
        ]
        for segment in segments {
            lines.append(String(format: "#EXTINF:%.6f,", segment.duration))
            lines.append(segment.uri)
        }
        lines.append("#EXT-X-ENDLIST")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
