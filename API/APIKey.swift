import Crypto
import Foundation

/// An API key: `farm_` and 43 characters of base64url (256 random bits). Only its SHA-256 is stored; the key itself
/// is shown once, when it is made (`farm keys create`).
package struct APIKey: Sendable, Equatable {
    package static let scheme = "farm_"
    package var text: String

    package init(text: String) { self.text = text }

    /// A new key from the system's secure random source.
    package static func generate() -> APIKey {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return APIKey(text: Self.scheme + Self.base64URL(Data(bytes)))
    }

    /// The key an `Authorization: Bearer …` header carries; nil when it carries none or not one of ours (a typo, a
    /// token of another service).
    package static func fromAuthorization(_ header: String?) -> APIKey? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        guard token.hasPrefix(Self.scheme), token.count == Self.scheme.count + 43,
            token.dropFirst(Self.scheme.count).allSatisfy({
                $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_")
            })
        else { return nil }
        return APIKey(text: token)
    }

    /// What is stored: the SHA-256 of the key's text.
    package var hash: Data { Data(SHA256.hash(data: Data(self.text.utf8))) }

    /// What names the key in listings without giving it away: its first 12 characters.
    package var prefix: String { String(self.text.prefix(12)) }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
