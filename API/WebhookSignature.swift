import Crypto
import Foundation

/// The `Farm-Signature` header of a webhook: `t=<unix seconds>,v1=<hex HMAC-SHA256>` over `"<t>.<body>"` with the
/// job's webhook secret (docs/api.md, "Verify a webhook"). The timestamp is signed with the body, so a receiver that
/// refuses old timestamps cannot be sent a captured request again later.
package enum WebhookSignature {
    package static func header(body: Data, secret: String, timestamp: Int64) -> String {
        "t=\(timestamp),v1=\(self.hex(body: body, secret: secret, timestamp: timestamp))"
    }

    static func hex(body: Data, secret: String, timestamp: Int64) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(body)
        let code = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    /// What a receiver does: true when `header` signs `body` with `secret` and its timestamp is within `tolerance`
    /// seconds of `now`. The comparison takes the same time wherever the codes differ.
    package static func isValid(
        header: String,
        body: Data,
        secret: String,
        now: Int64,
        tolerance: Int64 = 300
    ) -> Bool {
        var timestamp: Int64?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) }
            if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, abs(now - timestamp) <= tolerance else { return false }
        let expected = Array(self.hex(body: body, secret: secret, timestamp: timestamp).utf8)
        return signatures.contains { given in
            let given = Array(given.utf8)
            guard given.count == expected.count else { return false }
            return zip(given, expected).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
        }
    }
}
