import FarmProtocol
import Foundation

/// The playlists of what was really produced: the stitcher's measured renditions become `HLSMediaPlaylist` and
/// `HLSMasterPlaylist` values, written by their `text`. Pure: tested alone.
package enum Playlists {
    package struct Segment: Sendable, Equatable {
        package var uri: String
        package var duration: Double
        package var bytes: Int64
        package var frames: Int
        /// Bytes from the start of the segment file to the end of its leading IDR's data (the fragment's `moof`, the
        /// `mdat` header, the IDR): the I-frame playlist's byte range, which a player can decode alone. Nil for audio.
        package var keyframeBytes: Int64? = nil

        package init(uri: String, duration: Double, bytes: Int64, frames: Int, keyframeBytes: Int64? = nil) {
            self.uri = uri
            self.duration = duration
            self.bytes = bytes
            self.frames = frames
            self.keyframeBytes = keyframeBytes
        }
    }

    package struct MediaRendition: Sendable {
        package var name: String
        package var width: Int
        package var height: Int
        package var codecs: String
        package var segments: [Segment]
        /// The audio rendition's channel count, read from its init segment (the master's CHANNELS); nil for video.
        package var channels: Int? = nil

        package init(
            name: String,
            width: Int,
            height: Int,
            codecs: String,
            segments: [Segment],
            channels: Int? = nil
        ) {
            self.name = name
            self.width = width
            self.height = height
            self.codecs = codecs
            self.segments = segments
            self.channels = channels
        }

        package var totalDuration: Double { self.segments.reduce(0) { $0 + $1.duration } }
        package var totalBytes: Int64 { self.segments.reduce(0) { $0 + $1.bytes } }
        /// What BANDWIDTH declares (`SegmentBitrate.peak`), over the target duration the media playlist writes.
        package var peakBitrate: Int {
            SegmentBitrate.peak(self.sized, targetDuration: (self.segments.map(\.duration).max() ?? 0).rounded(.up))
        }
        package var averageBitrate: Int { SegmentBitrate.average(self.sized) }
        private var sized: [(duration: Double, bytes: Int)] {
            self.segments.map { (duration: $0.duration, bytes: Int($0.bytes)) }
        }
        /// The rendition as its I-frame playlist sees it: each segment's leading IDR, lasting until the next one.
        package var iFrames: MediaRendition? {
            let segments = self.segments.compactMap { segment in segment.keyframeBytes.map { (segment, $0) } }
            guard !segments.isEmpty, segments.count == self.segments.count else { return nil }
            var copy = self
            copy.segments = segments.map { segment, keyframeBytes in
                var entry = segment
                entry.bytes = keyframeBytes
                return entry
            }
            return copy
        }
        package var frameRate: Double {
            self.totalDuration > 0 ? Double(self.segments.reduce(0) { $0 + $1.frames }) / self.totalDuration : 0
        }
    }

    /// A VOD media playlist (HLS version 7 with fMP4's init segment, 3 for MPEG-TS without one): exact EXTINF
    /// durations, TARGETDURATION their rounded-up maximum.
    package static func media(_ segments: [Segment], initURI: String? = "init.mp4") -> String {
        self.vod(segments, initURI: initURI, iFramesOnly: false)
    }

    /// The media playlist of a job still running (RFC 8216 §4.3.3.5 EVENT): the segments from the first that are
    /// all there, in order; later versions only append, and the stitch ends it as the VOD `media` playlist.
    /// TARGETDURATION is `plannedTarget` (from the job's plan, so that it does not change as segments land), or the
    /// listed segments' own when longer.
    package static func event(_ segments: [Segment], initURI: String? = "init.mp4", plannedTarget: Int) -> String {
        HLSMediaPlaylist(
            version: initURI != nil ? 7 : 3,
            targetDuration: max(plannedTarget, self.targetDuration(segments.map(\.duration))),
            mediaSequence: 0,
            playlistType: "EVENT",
            independentSegments: true,
            hasEndList: false,
            mapURI: initURI,
            segments: segments.map { HLSMediaPlaylist.Segment(uri: $0.uri, duration: $0.duration) }
        ).text
    }

    /// TARGETDURATION for segments of these durations: the longest, rounded up to whole seconds (at least 1).
    package static func targetDuration(_ durations: [Double]) -> Int {
        max(Int((durations.max() ?? 1).rounded(.up)), 1)
    }

    /// An I-frame playlist (RFC 8216 §4.3.3.6): one entry per segment, its byte range the segment's leading IDR
    /// with the `moof` that describes it (MPEG-TS: with the PAT and PMT). Segments are one fragment each, so the
    /// other keyframes inside a segment have no `moof` of their own and cannot be listed.
    package static func iFrames(_ segments: [Segment], initURI: String? = "init.mp4") -> String {
        self.vod(segments.filter { $0.keyframeBytes != nil }, initURI: initURI, iFramesOnly: true)
    }

    private static func vod(_ segments: [Segment], initURI: String?, iFramesOnly: Bool) -> String {
        let target = self.targetDuration(segments.map(\.duration))
        var playlist = HLSMediaPlaylist(
            // fMP4's init segment needs version 7; byte ranges 4.
            version: initURI != nil ? 7 : (iFramesOnly ? 4 : 3),
            targetDuration: target,
            mediaSequence: 0,
            playlistType: "VOD",
            independentSegments: true,
            hasEndList: true,
            mapURI: initURI,
            segments: segments.map { segment in
                HLSMediaPlaylist.Segment(
                    uri: segment.uri,
                    duration: segment.duration,
                    byteRange: iFramesOnly ? segment.keyframeBytes.map { 0..<Int($0) } : nil
                )
            }
        )
        playlist.iFramesOnly = iFramesOnly
        return playlist.text
    }

    /// The master playlist: one variant per video rendition with the audio group, attributes measured from the
    /// output (peak and average bitrate of video plus audio, codecs from the init segments).
    /// `version` is the highest its media playlists need: 7 with fMP4, 4 with MPEG-TS (its I-frame byte ranges),
    /// so that players older than fMP4 in HLS accept a TS ladder.
    package static func master(video: [MediaRendition], audio: MediaRendition?, version: Int = 7) -> String {
        var master = HLSMasterPlaylist(version: version, independentSegments: true)
        if let audio {
            var attributes: [(key: String, value: String)] = [
                ("TYPE", "AUDIO"), ("GROUP-ID", "audio"), ("NAME", "default"), ("DEFAULT", "YES"),
                ("AUTOSELECT", "YES"),
            ]
            if let channels = audio.channels { attributes.append(("CHANNELS", "\(channels)")) }
            attributes.append(("URI", "\(audio.name)/playlist.m3u8"))
            master.renditions.append(.init(attributes: HLSAttributes(attributes)))
        }
        for rendition in video {
            var attributes: [(key: String, value: String)] = [
                ("BANDWIDTH", "\(rendition.peakBitrate + (audio?.peakBitrate ?? 0))"),
                ("AVERAGE-BANDWIDTH", "\(rendition.averageBitrate + (audio?.averageBitrate ?? 0))"),
                ("CODECS", ([rendition.codecs] + (audio.map { [$0.codecs] } ?? [])).joined(separator: ",")),
                ("RESOLUTION", "\(rendition.width)x\(rendition.height)"),
                ("FRAME-RATE", String(format: "%.3f", rendition.frameRate)),
            ]
            if audio != nil { attributes.append(("AUDIO", "audio")) }
            master.variants.append(.init(uri: "\(rendition.name)/playlist.m3u8", attributes: HLSAttributes(attributes)))
        }
        // Trick play (scrubbing, fast forward): video only, so no audio in the bitrates or codecs.
        for rendition in video {
            guard let iFrames = rendition.iFrames else { continue }
            let attributes: [(key: String, value: String)] = [
                ("BANDWIDTH", "\(iFrames.peakBitrate)"),
                ("AVERAGE-BANDWIDTH", "\(iFrames.averageBitrate)"),
                ("CODECS", rendition.codecs),
                ("RESOLUTION", "\(rendition.width)x\(rendition.height)"),
                ("URI", "\(rendition.name)/iframes.m3u8"),
            ]
            master.iFrameStreams.append(.init(attributes: HLSAttributes(attributes)))
        }
        return master.text
    }
}
