import Foundation

/// A file of a job's output folder as the origin names it: one or two components (`master.m3u8`,
/// `360p/segment_00003.m4s`), each of letters, digits, `_` and `-`, the last with one extension the origin serves.
///
/// Parsed from the raw (still percent-encoded) request path, so `..`, `%2e%2e`, `%2f`, backslashes, NUL, empty and
/// absolute components cannot even be spelled: traversal is impossible by construction, not filtered out.
package struct OriginPath: Equatable, Sendable {
    package let components: [String]
    package let kind: OriginFileKind

    /// Nil unless `raw` (the part of the path after the token, without its leading `/`) is of the grammar.
    package init?(raw: Substring) {
        let parts = raw.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return nil }
        for folder in parts.dropLast() {
            guard Self.isName(folder) else { return nil }
        }
        let file = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard file.count == 2, Self.isName(file[0]), let kind = OriginFileKind(rawValue: String(file[1])) else {
            return nil
        }
        self.components = parts.map(String.init)
        self.kind = kind
    }

    /// The file under `folder`.
    package func file(in folder: String) -> String {
        ([folder] + self.components).joined(separator: "/")
    }

    private static func isName(_ name: Substring) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy {
                switch $0 {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }
}

/// The files the origin serves, by extension; any other is not served.
package enum OriginFileKind: String, Sendable, CaseIterable {
    case m3u8, mp4, m4s, ts, vtt, jpg

    package var contentType: String {
        switch self {
        case .m3u8: "application/vnd.apple.mpegurl"
        case .mp4: "video/mp4"
        case .m4s: "video/iso.segment"
        case .ts: "video/mp2t"
        case .vtt: "text/vtt"
        case .jpg: "image/jpeg"
        }
    }

    /// Media never changes once a job is ready; playlists and cues are kept short so that a URL's expiry still
    /// means something at caches in front of the origin.
    package var cacheControl: String {
        switch self {
        case .m3u8, .vtt: "public, max-age=60"
        case .mp4, .m4s, .ts, .jpg: "public, max-age=31536000, immutable"
        }
    }
}

/// What a `Range` header asks of a file of `size` bytes (RFC 9110 §14): one range only; several are answered with
/// the whole file, as the RFC allows.
package enum ByteRangeRequest: Equatable, Sendable {
    case whole
    case part(ClosedRange<Int64>)
    case unsatisfiable

    package init(header: String?, size: Int64) {
        guard let header else {
            self = .whole
            return
        }
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("bytes="), !text.contains(",") else {
            self = .whole
            return
        }
        let spec = text.dropFirst("bytes=".count).split(separator: "-", omittingEmptySubsequences: false)
        guard spec.count == 2 else {
            self = .whole
            return
        }
        let first = spec[0].trimmingCharacters(in: .whitespaces)
        let last = spec[1].trimmingCharacters(in: .whitespaces)
        let isNumber = { (text: String) in !text.isEmpty && text.utf8.count <= 19 && text.allSatisfy(\.isNumber) }
        switch (isNumber(first) ? Int64(first) : nil, isNumber(last) ? Int64(last) : nil) {
        case (let start?, nil) where last.isEmpty:
            self = start < size ? .part(start...(size - 1)) : .unsatisfiable
        case (let start?, let end?) where start <= end:
            self = start < size ? .part(start...min(end, size - 1)) : .unsatisfiable
        case (nil, let suffix?) where first.isEmpty:
            self = suffix > 0 && size > 0 ? .part(max(0, size - suffix)...(size - 1)) : .unsatisfiable
        default:
            // Not a range this grammar knows: ignored, as RFC 9110 says of an invalid Range.
            self = .whole
        }
    }
}
