import Crypto
import FarmProtocol
import Foundation

/// Signs and checks the token of a playback URL, `/v1/jobs/{id}/hls/{token}/…` (docs/api.md, "Play").
///
/// The token is `{expires}.{keyID}.{signature}`: the expiry in Unix seconds, the signing key's id (8 hex digits) and
/// the HMAC-SHA256 (hex) of the job id, the expiry and the key id. It signs a path prefix, not a file: every playlist
/// and segment under it is covered, so the playlists' relative URIs work unchanged in every player.
package struct PlaybackSigner: Sendable {
    /// The key's bytes (SymmetricKey is not Sendable; one is made from them for each use).
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: self.keyBytes) }
    /// Names the key in the token, so a URL signed by another key is told apart from a forged one.
    package let keyID: String

    package init(key: SymmetricKey) {
        self.keyBytes = key.withUnsafeBytes { Array($0) }
        let id = HMAC<SHA256>.authenticationCode(for: Data("farm-playback-key-id".utf8), using: key)
        self.keyID = Data(id.prefix(4)).hexString
    }

    /// The key every coordinator with this cluster secret derives: each accepts the URLs the others sign.
    package init(clusterSecret: ClusterSecret) {
        self.init(key: clusterSecret.derivedKey(purpose: "farm-playback-v1"))
    }

    /// A key of this process alone: its URLs work on no other coordinator, nor after a restart.
    package static func random() -> PlaybackSigner {
        PlaybackSigner(key: SymmetricKey(size: .bits256))
    }

    /// The token for `jobID`, valid until `expires` (Unix seconds).
    package func token(jobID: Int64, expires: Int64) -> String {
        "\(expires).\(self.keyID).\(Data(self.code(jobID: jobID, expires: expires, keyID: self.keyID)).hexString)"
    }

    /// Whether `token` lets its holder read job `jobID`'s output at `now`.
    package func check(_ token: Substring, jobID: Int64, now: Date) -> PlaybackTokenCheck {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, (1...12).contains(parts[0].count), parts[0].allSatisfy(\.isASCIIDigit),
            let expires = Int64(parts[0]), parts[1].count == 8, parts[1].allSatisfy(\.isLowercaseHexDigit),
            parts[2].count == 64, let signature = [UInt8](hex: parts[2])
        else { return .unsigned }
        guard parts[1] == self.keyID else { return .otherKey }
        // Constant time (swift-crypto's comparison): the time taken tells nothing about the expected signature.
        guard
            HMAC<SHA256>.isValidAuthenticationCode(
                signature,
                authenticating: Self.message(jobID: jobID, expires: expires, keyID: self.keyID),
                using: self.key
            )
        else { return .badSignature }
        guard Double(expires) > now.timeIntervalSince1970 else { return .expired }
        return .valid(expires: expires)
    }

    private func code(jobID: Int64, expires: Int64, keyID: String) -> HashedAuthenticationCode<SHA256> {
        HMAC<SHA256>.authenticationCode(
            for: Self.message(jobID: jobID, expires: expires, keyID: keyID),
            using: self.key
        )
    }

    private static func message(jobID: Int64, expires: Int64, keyID: String) -> Data {
        Data("farm-playback-v1\n\(jobID)\n\(expires)\n\(keyID)".utf8)
    }
}

/// What `PlaybackSigner.check` found.
package enum PlaybackTokenCheck: Equatable, Sendable {
    case valid(expires: Int64)
    /// No token, or not one of this form.
    case unsigned
    /// Signed by a key this coordinator does not hold (a coordinator without the cluster secret, or another farm).
    case otherKey
    /// Signed for another job or expiry, or altered.
    case badSignature
    case expired
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
    fileprivate var isLowercaseHexDigit: Bool { self.isASCIIDigit || ("a"..."f").contains(self) }
}

extension Array where Element == UInt8 {
    /// The bytes of lowercase hex text, nil if it is not.
    fileprivate init?(hex: Substring) {
        guard hex.utf8.count.isMultiple(of: 2) else { return nil }
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        self = bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
