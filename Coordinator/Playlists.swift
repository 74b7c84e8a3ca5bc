import FarmProtocol
import Foundation

/// Renders HLS playlists from what was really produced. Pure: tested alone.
package enum Playlists {
    package struct Segment: Sendable, Equatable {
        package var uri: String
        package var duration: Double
        package var bytes: Int64
        package var frames: Int
    }

    package struct MediaRendition: Sendable {
        package var name: String
        package var width: Int
        package var height: Int
        package var codecs: String
        package var segments: [Segment]

        package var totalDuration: Double { self.segments.reduce(0) { $0 + $1.duration } }
        package var totalBytes: Int64 { self.segments.reduce(0) { $0 + $1.bytes } }
        /// RFC 8216 §4.3.4.2's peak segment bit rate: the highest bit rate of any run of consecutive segments lasting
        /// 0.5 to 1.5 times the target duration. A short last segment is measured with its neighbours, so its
        /// keyframe alone does not inflate BANDWIDTH.
        package var peakBitrate: Int {
            let target = (self.segments.map(\.duration).max() ?? 0).rounded(.up)
            var peak = 0.0
            for start in self.segments.indices {
                var duration = 0.0
                var bytes: Int64 = 0
                for segment in self.segments[start...] {
                    duration += segment.duration
                    bytes += segment.bytes
                    if duration > 1.5 * target { break }
                    if duration >= 0.5 * target { peak = max(peak, Double(bytes * 8) / duration) }
                }
            }
            // Every run is shorter than half the target (a tiny video): its average is the best measure there is.
            // Rounded up: BANDWIDTH must not be below the true peak, not even by a fraction of a bit.
            return peak > 0 ? Int(peak.rounded(.up)) : self.averageBitrate
        }
        package var averageBitrate: Int {
            self.totalDuration > 0 ? Int((Double(self.totalBytes * 8) / self.totalDuration).rounded(.up)) : 0
        }
        package var frameRate: Double {
            self.totalDuration > 0 ? Double(self.segments.reduce(0) { $0 + $1.frames }) / self.totalDuration : 0
        }
    }

    /// A VOD media playlist (HLS version 7, fMP4): exact EXTINF durations, TARGETDURATION their rounded-up maximum.
    package static func media(_ segments: [Segment], initURI: String = "init.mp4") -> String {
        let target = Int((segments.map(\.duration).max() ?? 1).rounded(.up))
        var lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            "#EXT-X-TARGETDURATION:\(max(target, 1))",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            "#EXT-X-MAP:URI=\"\(initURI)\"",
        ]
        for segment in segments {
            lines.append(String(format: "#EXTINF:%.6f,", segment.duration))
            lines.append(segment.uri)
        }
        lines.append("#EXT-X-ENDLIST")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The master playlist: one variant per video rendition with the audio group, attributes measured from the
    /// output (peak and average bitrate of video plus audio, codecs from the init segments).
    package static func master(video: [MediaRendition], audio: MediaRendition?) -> String {
        var lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        if let audio {
            lines.append(
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\",DEFAULT=YES,AUTOSELECT=YES,"
                    + "CHANNELS=\"2\",URI=\"\(audio.name)/playlist.m3u8\""
            )
        }
        for rendition in video {
            var attributes = [
                "BANDWIDTH=\(rendition.peakBitrate + (audio?.peakBitrate ?? 0))",
                "AVERAGE-BANDWIDTH=\(rendition.averageBitrate + (audio?.averageBitrate ?? 0))",
                "CODECS=\"\(([rendition.codecs] + (audio.map { [$0.codecs] } ?? [])).joined(separator: ","))\"",
                "RESOLUTION=\(rendition.width)x\(rendition.height)",
                String(format: "FRAME-RATE=%.3f", rendition.frameRate),
            ]
            if audio != nil { attributes.append("AUDIO=\"audio\"") }
            lines.append("#EXT-X-STREAM-INF:" + attributes.joined(separator: ","))
            lines.append("\(rendition.name)/playlist.m3u8")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
