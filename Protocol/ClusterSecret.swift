import Crypto
import Foundation

/// The shared secret that lets an agent join a farm. It never crosses the wire: the agent proves it knows the secret
/// with an HMAC over a nonce the coordinator chose for this connection, so a captured proof is worthless later.
public struct ClusterSecret: Sendable {
    private let secret: [UInt8]

    public init(_ secret: String) {
        self.secret = Array(secret.utf8)
    }

    package func proof(nonce: String, agentName: String) -> String {
        let message = Data("farm-agent-v1\n\(nonce)\n\(agentName)".utf8)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: self.secret))).hexString
    }

    /// Compares in constant time, so the time taken tells an attacker nothing about the expected proof.
    package func verify(proof: String, nonce: String, agentName: String) -> Bool {
        let expected = Array(self.proof(nonce: nonce, agentName: agentName).utf8)
        let given = Array(proof.utf8)
        guard expected.count == given.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, given) { difference |= a ^ b }
        return difference == 0
    }

    /// A key for another purpose than the agents' proof (HKDF-SHA256 with `purpose` as its info), the same on every
    /// coordinator given this secret: what one signs, all accept, and the secret itself signs nothing else.
    package func derivedKey(purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: self.secret),
            info: Data(purpose.utf8),
            outputByteCount: 32
        )
    }

    package static func makeNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }).hexString
    }
}

extension Data {
    package var hexString: String { self.map { String(format: "%02x", $0) }.joined() }
}

/// SHA-256 of bytes as lowercase hex, the form every hash takes in the protocol and the database.
package func sha256Hex(_ data: some DataProtocol) -> String {
    Data(SHA256.hash(data: data)).hexString
}

/// SHA-256 over data that arrives in pieces.
package struct SHA256Stream {
    private var hasher = SHA256()
    package init() {}
    package mutating func update(_ data: some DataProtocol) { self.hasher.update(data: data) }
    package func finalize() -> String { Data(self.hasher.finalize()).hexString }
}
