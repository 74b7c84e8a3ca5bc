import Foundation

/// An HLS media playlist: what the stitcher writes (`Playlists.media` and `Playlists.iFrames` build one, `text`
/// writes it) and what `farm verify` reads back (`init(parsing:)`), one type for both directions.
package struct HLSMediaPlaylist: Sendable, Equatable {
    package struct Segment: Sendable, Equatable {
        package var uri: String
        /// The `EXTINF` duration in seconds.
        package var duration: Double
        /// `EXT-X-BYTERANGE`: the part of the file that is the segment; nil for the whole file.
        package var byteRange: Range<Int>?

        package init(uri: String, duration: Double, byteRange: Range<Int>? = nil) {
            self.uri = uri
            self.duration = duration
            self.byteRange = byteRange
        }
    }

    package var version: Int?
    package var targetDuration: Int?
    package var mediaSequence: Int?
    package var playlistType: String?
    package var independentSegments: Bool
    package var hasEndList: Bool
    /// `EXT-X-I-FRAMES-ONLY`: every segment is one I-frame (a trick-play playlist).
    package var iFramesOnly = false
    /// `EXT-X-MAP:URI`: the init segment of an fMP4 playlist.
    package var mapURI: String?
    package var segments: [Segment]

    /// MPEG-TS segments (`.ts`), which start without an init segment.
    package var isTransportStream: Bool {
        self.mapURI == nil && !self.segments.isEmpty && self.segments.allSatisfy { $0.uri.hasSuffix(".ts") }
    }

    package init(
        version: Int? = nil,
        targetDuration: Int? = nil,
        mediaSequence: Int? = nil,
        playlistType: String? = nil,
        independentSegments: Bool = false,
        hasEndList: Bool = false,
        mapURI: String? = nil,
        segments: [Segment] = []
    ) {
        self.version = version
        self.targetDuration = targetDuration
        self.mediaSequence = mediaSequence
        self.playlistType = playlistType
        self.independentSegments = independentSegments
        self.hasEndList = hasEndList
        self.mapURI = mapURI
        self.segments = segments
    }

    /// The playlist as farm writes it: the header tags in a fixed order, then each segment with its EXTINF (six
    /// decimals) and byte range, then the end tag.
    package var text: String {
        var lines = ["#EXTM3U"]
        if let version { lines.append("#EXT-X-VERSION:\(version)") }
        if let targetDuration { lines.append("#EXT-X-TARGETDURATION:\(targetDuration)") }
        if let mediaSequence { lines.append("#EXT-X-MEDIA-SEQUENCE:\(mediaSequence)") }
        if let playlistType { lines.append("#EXT-X-PLAYLIST-TYPE:\(playlistType)") }
        if self.iFramesOnly { lines.append("#EXT-X-I-FRAMES-ONLY") }
        if self.independentSegments { lines.append("#EXT-X-INDEPENDENT-SEGMENTS") }
        if let mapURI { lines.append("#EXT-X-MAP:URI=\"\(mapURI)\"") }
        for segment in self.segments {
            lines.append(String(format: "#EXTINF:%.6f,", segment.duration))
            if let range = segment.byteRange { lines.append("#EXT-X-BYTERANGE:\(range.count)@\(range.lowerBound)") }
            lines.append(segment.uri)
        }
        if self.hasEndList { lines.append("#EXT-X-ENDLIST") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a media playlist: every `EXTINF` needs a number and a URI line after it; a master playlist's tags are
    /// refused with a hint.
    package init(parsing text: String) throws {
        let lines = try HLSLines.of(text)
        var media = HLSMediaPlaylist()
        var pendingDuration: Double?
        var pendingRange: Range<Int>?
        // A byte range without an offset starts where the previous one of the same file ended (RFC 8216 §4.3.2.2).
        var rangeEnds: [String: Int] = [:]
        var pendingRangeStartsAfterPrevious = false
        for (number, line) in lines {
            if line.hasPrefix("#") {
                if let value = HLSLines.value(of: "#EXTINF", in: line) {
                    let durationText = value.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    guard let duration = Double(durationText.trimmingCharacters(in: .whitespaces)), duration >= 0
                    else {
                        throw PlaylistError("line \(number): EXTINF has no valid duration: \(line)")
                    }
                    if pendingDuration != nil {
                        throw PlaylistError("line \(number): EXTINF follows another without a URI line")
                    }
                    pendingDuration = duration
                } else if let value = HLSLines.value(of: "#EXT-X-TARGETDURATION", in: line) {
                    guard let target = Int(value) else {
                        throw PlaylistError("line \(number): EXT-X-TARGETDURATION is not an integer: \(value)")
                    }
                    media.targetDuration = target
                } else if let value = HLSLines.value(of: "#EXT-X-VERSION", in: line) {
                    media.version = Int(value)
                } else if let value = HLSLines.value(of: "#EXT-X-MEDIA-SEQUENCE", in: line) {
                    media.mediaSequence = Int(value)
                } else if let value = HLSLines.value(of: "#EXT-X-PLAYLIST-TYPE", in: line) {
                    media.playlistType = value
                } else if let value = HLSLines.value(of: "#EXT-X-MAP", in: line) {
                    guard let uri = try HLSAttributes(parsing: value, line: number)["URI"] else {
                        throw PlaylistError("line \(number): EXT-X-MAP without a URI")
                    }
                    media.mapURI = uri
                } else if let value = HLSLines.value(of: "#EXT-X-BYTERANGE", in: line) {
                    let parts = value.split(separator: "@", maxSplits: 1).map { Int($0) }
                    guard let length = parts.first ?? nil, length >= 0, parts.count == 1 || (parts[1] ?? -1) >= 0
                    else {
                        throw PlaylistError("line \(number): EXT-X-BYTERANGE is not LENGTH[@OFFSET]: \(value)")
                    }
                    let offset = parts.count == 2 ? parts[1]! : 0
                    pendingRange = offset..<(offset + length)
                    pendingRangeStartsAfterPrevious = parts.count == 1
                } else if line == "#EXT-X-I-FRAMES-ONLY" {
                    media.iFramesOnly = true
                } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                    media.independentSegments = true
                } else if line == "#EXT-X-ENDLIST" {
                    media.hasEndList = true
                } else if line.hasPrefix("#EXT-X-STREAM-INF") {
                    throw PlaylistError("line \(number): EXT-X-STREAM-INF in a media playlist; is this the master?")
                }
                continue
            }
            guard let duration = pendingDuration else {
                throw PlaylistError("line \(number): segment \(line) has no EXTINF before it")
            }
            if pendingRangeStartsAfterPrevious, let range = pendingRange {
                guard let start = rangeEnds[line] else {
                    throw PlaylistError(
                        "line \(number): EXT-X-BYTERANGE of \(line) has no offset and no range before it"
                    )
                }
                pendingRange = start..<(start + range.count)
            }
            if let range = pendingRange { rangeEnds[line] = range.upperBound }
            media.segments.append(.init(uri: line, duration: duration, byteRange: pendingRange))
            pendingDuration = nil
            pendingRange = nil
            pendingRangeStartsAfterPrevious = false
        }
        if pendingDuration != nil { throw PlaylistError("the last EXTINF has no segment URI after it") }
        self = media
    }
}
