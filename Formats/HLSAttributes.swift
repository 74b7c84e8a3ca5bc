import Foundation

/// An HLS attribute list (RFC 8216 §4.2), `KEY=value,KEY="quoted, with commas"`: its entries in the order written,
/// values without their quotes. Equal when the same keys have the same values, whatever the order; written back in
/// its own order, quoting the attributes whose values the RFC makes quoted strings.
package struct HLSAttributes: Sendable, Equatable, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    package private(set) var entries: [(key: String, value: String)]

    /// The attributes whose values are quoted strings (RFC 8216 §4.3.4); every other one is written bare.
    static let quotedKeys: Set<String> = [
        "URI", "GROUP-ID", "NAME", "LANGUAGE", "ASSOC-LANGUAGE", "CODECS", "AUDIO", "VIDEO", "SUBTITLES", "CHANNELS",
        "INSTREAM-ID", "CHARACTERISTICS", "STABLE-VARIANT-ID", "STABLE-RENDITION-ID", "SUPPLEMENTAL-CODECS",
    ]

    package init(_ entries: [(key: String, value: String)]) { self.entries = entries }

    package init(dictionaryLiteral elements: (String, String)...) {
        self.entries = elements.map { (key: $0.0, value: $0.1) }
    }

    /// The value of `key`, the last one when it is written twice.
    package subscript(key: String) -> String? { self.entries.last { $0.key == key }?.value }

    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.dictionary == rhs.dictionary }

    private var dictionary: [String: String] {
        Dictionary(self.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The list as written in a playlist line.
    package var description: String {
        self.entries.map { entry in
            Self.quotedKeys.contains(entry.key) ? "\(entry.key)=\"\(entry.value)\"" : "\(entry.key)=\(entry.value)"
        }.joined(separator: ",")
    }

    /// Reads an attribute list; `line` is the playlist line it stands on, for the error.
    package init(parsing text: String, line: Int = 0) throws {
        var entries: [(key: String, value: String)] = []
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
            entries.append((key: key, value: value))
            if cursor < text.endIndex {
                guard text[cursor] == "," else {
                    throw PlaylistError("line \(line): expected a comma after the value of \(key) in \(text)")
                }
                cursor = text.index(after: cursor)
            }
            index = cursor
        }
        self.entries = entries
    }
}

/// A playlist that cannot be read; the description names the line.
package struct PlaylistError: Error, CustomStringConvertible, Sendable, Equatable {
    package var description: String

    package init(_ description: String) { self.description = description }
}

/// The line structure both playlist kinds share. Lenient where RFC 8216 allows variation (unknown tags are skipped,
/// CRLF line ends accepted), strict where a player would be: the file must start with `#EXTM3U`.
enum HLSLines {
    /// Non-empty, trimmed lines with their 1-based numbers, after the `#EXTM3U` header.
    static func of(_ text: String) throws -> [(Int, String)] {
        let all = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().map {
            ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespacesAndNewlines))
        }.filter { !$0.1.isEmpty }
        guard all.first?.1 == "#EXTM3U" else { throw PlaylistError("the file does not start with #EXTM3U") }
        return Array(all.dropFirst())
    }

    /// The text after `TAG:` when `line` is that tag, else nil.
    static func value(of tag: String, in line: String) -> String? {
        guard line.hasPrefix(tag + ":") else { return nil }
        return String(line.dropFirst(tag.count + 1))
    }
}
