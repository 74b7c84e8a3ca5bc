import Foundation

/// The parts of an HLS master playlist that `farm verify` checks. Attribute values are kept as written (quotes
/// removed), so a check can report exactly what the file says.
package struct HLSMasterPlaylist: Sendable, Equatable {
    package struct Variant: Sendable, Equatable {
        package var uri: String
        package var attributes: [String: String]

        package init(uri: String, attributes: [String: String]) {
            self.uri = uri
            self.attributes = attributes
        }

        package var bandwidth: Int? { self.attributes["BANDWIDTH"].flatMap { Int($0) } }
        package var averageBandwidth: Int? { self.attributes["AVERAGE-BANDWIDTH"].flatMap { Int($0) } }
        package var codecs: String? { self.attributes["CODECS"] }
        package var audioGroup: String? { self.attributes["AUDIO"] }
        package var frameRate: Double? { self.attributes["FRAME-RATE"].flatMap { Double($0) } }

        /// `RESOLUTION=WxH`, or nil when absent or malformed.
        package var resolution: (width: Int, height: Int)? {
            guard let text = self.attributes["RESOLUTION"] else { return nil }
            let parts = text.split(separator: "x")
            guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]) else { return nil }
            return (width, height)
        }
    }

    /// An `EXT-X-MEDIA` entry.
    package struct Rendition: Sendable, Equatable {
        package var attributes: [String: String]

        package var type: String? { self.attributes["TYPE"] }
        package var groupID: String? { self.attributes["GROUP-ID"] }
        package var name: String? { self.attributes["NAME"] }
        package var uri: String? { self.attributes["URI"] }
    }

    package var version: Int?
    package var independentSegments: Bool
    package var variants: [Variant]
    package var renditions: [Rendition]
    /// `EXT-X-I-FRAME-STREAM-INF` entries: their attributes, the playlist in `URI`.
    package var iFrameStreams: [Rendition] = []

    /// The `EXT-X-I-FRAME-STREAM-INF` whose playlist lies in the same folder as `variant`'s.
    package func iFrameStream(beside variant: Variant) -> Rendition? {
        func folder(_ uri: String) -> String { uri.split(separator: "/").dropLast().joined(separator: "/") }
        return self.iFrameStreams.first { $0.uri.map(folder) == folder(variant.uri) }
    }

    /// The first `EXT-X-MEDIA` of `TYPE=AUDIO` in a group.
    package func audioRendition(group: String) -> Rendition? {
        self.renditions.first { $0.type == "AUDIO" && $0.groupID == group }
    }
}

/// The parts of an HLS media playlist that `farm verify` checks.
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
}

/// A playlist that cannot be read; the description names the line.
package struct PlaylistError: Error, CustomStringConvertible, Sendable, Equatable {
    package var description: String

    package init(_ description: String) { self.description = description }
}

/// Parses the playlists farm writes (RFC 8216, version 7, fMP4). Pure: strings in, values out.
///
/// Lenient where the RFC allows variation (unknown tags are skipped, CRLF line ends accepted), strict where a
/// player would be: the file must start with `#EXTM3U`, every `EXTINF` needs a number and a URI line after it, every
/// `EXT-X-STREAM-INF` a URI line after it.
package enum HLSPlaylistParser {
    package static func parseMaster(_ text: String) throws -> HLSMasterPlaylist {
        let lines = try self.lines(text)
        var master = HLSMasterPlaylist(version: nil, independentSegments: false, variants: [], renditions: [])
        var pendingVariant: [String: String]?
        for (number, line) in lines {
            if line.hasPrefix("#") {
                if let value = self.value(of: "#EXT-X-VERSION", in: line) {
                    master.version = Int(value)
                } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                    master.independentSegments = true
                } else if let value = self.value(of: "#EXT-X-STREAM-INF", in: line) {
                    if pendingVariant != nil {
                        throw PlaylistError("line \(number): EXT-X-STREAM-INF follows another without a URI line")
                    }
                    pendingVariant = try self.attributes(value, line: number)
                } else if let value = self.value(of: "#EXT-X-MEDIA", in: line) {
                    master.renditions.append(.init(attributes: try self.attributes(value, line: number)))
                } else if let value = self.value(of: "#EXT-X-I-FRAME-STREAM-INF", in: line) {
                    master.iFrameStreams.append(.init(attributes: try self.attributes(value, line: number)))
                } else if line.hasPrefix("#EXTINF") {
                    throw PlaylistError("line \(number): EXTINF in a master playlist; is this a media playlist?")
                }
                continue
            }
            guard let attributes = pendingVariant else {
                throw PlaylistError("line \(number): URI \(line) without an EXT-X-STREAM-INF before it")
            }
            master.variants.append(.init(uri: line, attributes: attributes))
            pendingVariant = nil
        }
        if pendingVariant != nil { throw PlaylistError("the last EXT-X-STREAM-INF has no URI line") }
        return master
    }

    package static func parseMedia(_ text: String) throws -> HLSMediaPlaylist {
        let lines = try self.lines(text)
        var media = HLSMediaPlaylist()
        var pendingDuration: Double?
        var pendingRange: Range<Int>?
        // A byte range without an offset starts where the previous one of the same file ended (RFC 8216 §4.3.2.2).
        var rangeEnds: [String: Int] = [:]
        var pendingRangeStartsAfterPrevious = false
        for (number, line) in lines {
            if line.hasPrefix("#") {
                if let value = self.value(of: "#EXTINF", in: line) {
                    let durationText = value.split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    guard let duration = Double(durationText.trimmingCharacters(in: .whitespaces)), duration >= 0
                    else {
                        throw PlaylistError("line \(number): EXTINF has no valid duration: \(line)")
                    }
                    if pendingDuration != nil {
                        throw PlaylistError("line \(number): EXTINF follows another without a URI line")
                    }
                    pendingDuration = duration
                } else if let value = self.value(of: "#EXT-X-TARGETDURATION", in: line) {
                    guard let target = Int(value) else {
                        throw PlaylistError("line \(number): EXT-X-TARGETDURATION is not an integer: \(value)")
                    }
                    media.targetDuration = target
                } else if let value = self.value(of: "#EXT-X-VERSION", in: line) {
                    media.version = Int(value)
                } else if let value = self.value(of: "#EXT-X-MEDIA-SEQUENCE", in: line) {
                    media.mediaSequence = Int(value)
                } else if let value = self.value(of: "#EXT-X-PLAYLIST-TYPE", in: line) {
                    media.playlistType = value
                } else if let value = self.value(of: "#EXT-X-MAP", in: line) {
                    guard let uri = try self.attributes(value, line: number)["URI"] else {
                        throw PlaylistError("line \(number): EXT-X-MAP without a URI")
                    }
                    media.mapURI = uri
                } else if let value = self.value(of: "#EXT-X-BYTERANGE", in: line) {
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
        return media
    }

    /// Parses an attribute list (`KEY=value,KEY="quoted, with commas"`) into a dictionary, quotes removed.
    package static func attributes(_ text: String, line: Int = 0) throws -> [String: String] {
        var result: [String: String] = [:]
        var index = text.startIndex
        while index < text.endIndex {
            guard let equals = text[index...].firstIndex(of: "=") else {
                throw PlaylistError("line \(line): attribute without a value in \(text)")
            }
            let key = text[index..<equals].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw PlaylistError("line \(line): attribute without a name in \(text)") }
            var cursor = text.index(after: equals)
            let value: String
            if cursor < text.endIndex, text[cursor] == "\"" {
                let start = text.index(after: cursor)
                guard let close = text[start...].firstIndex(of: "\"") else {
                    throw PlaylistError("line \(line): unterminated quoted value of \(key)")
                }
                value = String(text[start..<close])
                cursor = text.index(after: close)
            } else {
                let end = text[cursor...].firstIndex(of: ",") ?? text.endIndex
                value = String(text[cursor..<end])
                cursor = end
            }
            result[key] = value
            if cursor < text.endIndex {
                guard text[cursor] == "," else {
                    throw PlaylistError("line \(line): expected a comma after the value of \(key) in \(text)")
                }
                cursor = text.index(after: cursor)
            }
            index = cursor
        }
        return result
    }

    /// Non-empty, trimmed lines with their 1-based numbers; checks the `#EXTM3U` header.
    private static func lines(_ text: String) throws -> [(Int, String)] {
        let all = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().map {
            ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespacesAndNewlines))
        }.filter { !$0.1.isEmpty }
        guard all.first?.1 == "#EXTM3U" else { throw PlaylistError("the file does not start with #EXTM3U") }
        return Array(all.dropFirst())
    }

    /// The text after `TAG:` when `line` is that tag, else nil.
    private static func value(of tag: String, in line: String) -> String? {
        guard line.hasPrefix(tag + ":") else { return nil }
        return String(line.dropFirst(tag.count + 1))
    }
}
