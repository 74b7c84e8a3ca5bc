import Foundation

/// An HLS master playlist: what the stitcher writes (`Playlists.master` builds one, `text` writes it) and what
/// `farm verify` reads back (`init(parsing:)`), one type for both directions. Attribute values are kept as written
/// (quotes removed), so a check can report exactly what the file says.
package struct HLSMasterPlaylist: Sendable, Equatable {
    /// An `EXT-X-STREAM-INF` entry and the URI line after it.
    package struct Variant: Sendable, Equatable {
        package var uri: String
        package var attributes: HLSAttributes

        package init(uri: String, attributes: HLSAttributes) {
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

    /// An `EXT-X-MEDIA` or `EXT-X-I-FRAME-STREAM-INF` entry: attributes only.
    package struct Rendition: Sendable, Equatable {
        package var attributes: HLSAttributes

        package init(attributes: HLSAttributes) { self.attributes = attributes }

        package var type: String? { self.attributes["TYPE"] }
        package var groupID: String? { self.attributes["GROUP-ID"] }
        package var name: String? { self.attributes["NAME"] }
        package var uri: String? { self.attributes["URI"] }
    }

    package var version: Int?
    package var independentSegments: Bool
    package var variants: [Variant]
    /// `EXT-X-MEDIA` entries.
    package var renditions: [Rendition]
    /// `EXT-X-I-FRAME-STREAM-INF` entries: their attributes, the playlist in `URI`.
    package var iFrameStreams: [Rendition] = []

    package init(
        version: Int? = nil,
        independentSegments: Bool = false,
        variants: [Variant] = [],
        renditions: [Rendition] = [],
        iFrameStreams: [Rendition] = []
    ) {
        self.version = version
        self.independentSegments = independentSegments
        self.variants = variants
        self.renditions = renditions
        self.iFrameStreams = iFrameStreams
    }

    /// The `EXT-X-I-FRAME-STREAM-INF` whose playlist lies in the same folder as `variant`'s.
    package func iFrameStream(beside variant: Variant) -> Rendition? {
        func folder(_ uri: String) -> String { uri.split(separator: "/").dropLast().joined(separator: "/") }
        return self.iFrameStreams.first { $0.uri.map(folder) == folder(variant.uri) }
    }

    /// The first `EXT-X-MEDIA` of `TYPE=AUDIO` in a group.
    package func audioRendition(group: String) -> Rendition? {
        self.renditions.first { $0.type == "AUDIO" && $0.groupID == group }
    }

    /// The playlist as farm writes it: the header, the media renditions, each variant and its URI, then the I-frame
    /// streams.
    package var text: String {
        var lines = ["#EXTM3U"]
        if let version { lines.append("#EXT-X-VERSION:\(version)") }
        if self.independentSegments { lines.append("#EXT-X-INDEPENDENT-SEGMENTS") }
        lines += self.renditions.map { "#EXT-X-MEDIA:\($0.attributes)" }
        for variant in self.variants {
            lines.append("#EXT-X-STREAM-INF:\(variant.attributes)")
            lines.append(variant.uri)
        }
        lines += self.iFrameStreams.map { "#EXT-X-I-FRAME-STREAM-INF:\($0.attributes)" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads a master playlist: every `EXT-X-STREAM-INF` needs a URI line after it, and a media playlist's tags are
    /// refused with a hint.
    package init(parsing text: String) throws {
        self.init()
        var pendingVariant: HLSAttributes?
        for (number, line) in try HLSLines.of(text) {
            if line.hasPrefix("#") {
                if let value = HLSLines.value(of: "#EXT-X-VERSION", in: line) {
                    self.version = Int(value)
                } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                    self.independentSegments = true
                } else if let value = HLSLines.value(of: "#EXT-X-STREAM-INF", in: line) {
                    if pendingVariant != nil {
                        throw PlaylistError("line \(number): EXT-X-STREAM-INF follows another without a URI line")
                    }
                    pendingVariant = try HLSAttributes(parsing: value, line: number)
                } else if let value = HLSLines.value(of: "#EXT-X-MEDIA", in: line) {
                    self.renditions.append(Rendition(attributes: try HLSAttributes(parsing: value, line: number)))
                } else if let value = HLSLines.value(of: "#EXT-X-I-FRAME-STREAM-INF", in: line) {
                    self.iFrameStreams.append(Rendition(attributes: try HLSAttributes(parsing: value, line: number)))
                } else if line.hasPrefix("#EXTINF") {
                    throw PlaylistError("line \(number): EXTINF in a master playlist; is this a media playlist?")
                }
                continue
            }
            guard let attributes = pendingVariant else {
                throw PlaylistError("line \(number): URI \(line) without an EXT-X-STREAM-INF before it")
            }
            self.variants.append(Variant(uri: line, attributes: attributes))
            pendingVariant = nil
        }
        if pendingVariant != nil { throw PlaylistError("the last EXT-X-STREAM-INF has no URI line") }
    }
}
