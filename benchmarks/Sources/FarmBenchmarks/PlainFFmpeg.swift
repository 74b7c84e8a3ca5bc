import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// The plain ffmpeg way: one process that decodes the source once and makes everything the farm makes, written out
/// in full so that a reader can run it by hand. Every encoder option mirrors `Media/FarmMedia/ChunkEncoder.swift`
/// with `EncoderSettings.default`; only the thread count is ffmpeg's own (it threads one process, the farm runs
/// single-threaded encoders in parallel agents).
enum PlainFFmpeg {
    /// The ladder, its audio, and the poster and sprite sheet `Formats/ThumbnailPlan.swift` would plan (not the
    /// WebVTT file: a few lines of text). Output layout as the farm's: `<rung>/playlist.m3u8`, `<rung>/init.mp4`,
    /// `<rung>/segment_NNNNN.m4s`, `audio/`, `master.m3u8`, `poster.jpg`, `thumbnails.jpg`.
    static func ladder(source: SourceInfo, output: String) -> [String] {
        let settings = EncoderSettings.default
        let renditions = Ladder.renditions(displayWidth: source.displayWidth, displayHeight: source.displayHeight)
        let frameRate = source.video.frameRate.doubleValue
        let thumbnails = SpriteSheet(
            durationSeconds: source.durationSeconds,
            displayWidth: source.displayWidth,
            displayHeight: source.displayHeight
        )
        let tileFrames = max(1, Int((Double(thumbnails.intervalSeconds) * frameRate).rounded()))
        let posterFrame = Int((thumbnails.posterSeconds * frameRate).rounded())

        var graph = "[0:v]split=\(renditions.count + 2)" + renditions.indices.map { "[s\($0)]" }.joined() + "[p][t]"
        for (index, rendition) in renditions.enumerated() {
            graph += ";[s\(index)]scale=\(rendition.width):\(rendition.height)[v\(index)]"
        }
        graph +=
            ";[p]select='eq(n\\,\(posterFrame))',scale=\(thumbnails.posterWidth):\(thumbnails.posterHeight)[poster]"
        graph += ";[t]select='not(mod(n\\,\(tileFrames)))',scale=\(thumbnails.tileWidth):\(thumbnails.tileHeight)"
        graph += ",tile=\(thumbnails.columns)x\(thumbnails.rows)[sheet]"

        var arguments = ["ffmpeg", "-hide_banner", "-y", "-i", source.path, "-filter_complex", graph]
        for index in renditions.indices { arguments += ["-map", "[v\(index)]"] }
        arguments += ["-map", "0:a:0"]
        arguments += [
            "-c:v", settings.codec, "-preset", settings.preset, "-crf", "\(settings.crf)", "-pix_fmt", "yuv420p",
            "-bf", "\(settings.bFrames)", "-g", "\(Int((settings.maxKeyframeInterval * frameRate).rounded(.down)))",
            "-force_key_frames", "expr:gte(t,n_forced*\(Int(settings.maxKeyframeInterval)))", "-forced-idr", "1",
            "-x264-params", "scenecut=0:open-gop=0:bframes=\(settings.bFrames)",
            "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
        ]
        for (index, rendition) in renditions.enumerated() {
            arguments += [
                "-maxrate:v:\(index)", "\(rendition.maxBitrate)", "-bufsize:v:\(index)", "\(rendition.maxBitrate * 2)",
            ]
        }
        arguments += [
            "-c:a", "aac", "-b:a", "\(settings.audioBitrate)", "-ar", "\(settings.audioSampleRate)",
            "-ac", "\(settings.audioChannels)",
        ]
        let streams = renditions.enumerated().map { "v:\($0.offset),name:\($0.element.name),agroup:audio" }
        arguments += [
            "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
            "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "\(output)/%v/segment_%05d.m4s",
            "-master_pl_name", "master.m3u8",
            "-var_stream_map", (streams + ["a:0,name:audio,agroup:audio"]).joined(separator: " "),
            "\(output)/%v/playlist.m3u8",
        ]
        arguments += ["-map", "[poster]", "-frames:v", "1", "-q:v", "3", "\(output)/poster.jpg"]
        arguments += ["-map", "[sheet]", "-frames:v", "1", "-q:v", "3", "\(output)/thumbnails.jpg"]
        return arguments
    }

    /// PSNR-Y of each rung in `output` against the source scaled to the rung's size by the same scaler, in one
    /// process (the source decoded once). Both sides start at zero so that frames pair by position in time.
    static func psnrCommand(source: String, output: String, renditions: [RenditionSpec]) -> [String] {
        self.psnrCommand(source: source, inputs: renditions.map { ($0, "\(output)/\($0.name)/playlist.m3u8") })
    }

    /// PSNR-Y of each rendition's file (a playlist or a single file) against the scaled source, in one process.
    static func psnrCommand(source: String, inputs: [(rendition: RenditionSpec, path: String)]) -> [String] {
        let renditions = inputs.map(\.rendition)
        var arguments = ["ffmpeg", "-hide_banner", "-nostats", "-i", source]
        for input in inputs { arguments += ["-i", input.path] }
        var graph = "[0:v]split=\(renditions.count)" + renditions.indices.map { "[s\($0)]" }.joined()
        for (index, rendition) in renditions.enumerated() {
            graph += ";[s\(index)]setpts=PTS-STARTPTS,scale=\(rendition.width):\(rendition.height)[r\(index)]"
            graph += ";[\(index + 1):v]setpts=PTS-STARTPTS[d\(index)];[d\(index)][r\(index)]psnr[q\(index)]"
        }
        arguments += ["-filter_complex", graph]
        for index in renditions.indices { arguments += ["-map", "[q\(index)]", "-f", "null", "-"] }
        return arguments
    }

    /// The PSNR-Y values of `psnrCommand`'s log, in rung order (`Parsed_psnr_N` numbers the filters in the order
    /// the graph lists them). Infinity for identical pictures.
    static func psnrValues(log: String) -> [Double] {
        var found: [(Int, Double)] = []
        for line in log.split(separator: "\n") where line.contains("Parsed_psnr_") && line.contains(" y:") {
            guard let name = line.range(of: "Parsed_psnr_"), let y = line.range(of: " y:") else { continue }
            let number = Int(line[name.upperBound...].prefix { $0.isNumber }) ?? 0
            let text = line[y.upperBound...].prefix { !$0.isWhitespace }
            found.append((number, text == "inf" ? .infinity : Double(text) ?? .nan))
        }
        return found.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

/// What `Formats/ThumbnailPlan.swift` plans for a video (that type is `package`, so not visible from this package):
/// a tile every `intervalSeconds` (2 s, longer for videos over 200 s, at most 100 tiles), 160 px wide, 10 columns;
/// a poster a tenth of the way in, at most 1280 px wide.
struct SpriteSheet {
    var intervalSeconds: Int
    var tileWidth = 160
    var tileHeight: Int
    var columns: Int
    var rows: Int
    var posterSeconds: Double
    var posterWidth: Int
    var posterHeight: Int

    init(durationSeconds: Double, displayWidth: Int, displayHeight: Int) {
        func evenHeight(_ width: Int) -> Int {
            max(2, Int((Double(width) * Double(displayHeight) / Double(max(displayWidth, 1)) / 2).rounded()) * 2)
        }
        let milliseconds = max(1, Int((durationSeconds * 1000).rounded()))
        self.intervalSeconds = max(2, (milliseconds + 100_000 - 1) / 100_000)
        let count = (milliseconds + self.intervalSeconds * 1000 - 1) / (self.intervalSeconds * 1000)
        self.tileHeight = evenHeight(self.tileWidth)
        self.columns = min(10, count)
        self.rows = (count + self.columns - 1) / self.columns
        self.posterSeconds = milliseconds >= 1000 ? Double(milliseconds / 10) / 1000 : 0
        self.posterWidth = max(2, min(1280, displayWidth) / 2 * 2)
        self.posterHeight = evenHeight(self.posterWidth)
    }
}
