import FarmProtocol
import Testing

@Suite("ClusterSecret")
struct ClusterSecretTests {
    let secret = ClusterSecret("correct horse battery staple")
    let nonce = ClusterSecret.makeNonce()

    @Test("a proof verifies with the same secret, nonce and agent name")
    func verifies() {
        let proof = self.secret.proof(nonce: self.nonce, agentName: "agent-1")
        #expect(self.secret.verify(proof: proof, nonce: self.nonce, agentName: "agent-1"))
        // A coordinator holds its own instance made from the same string.
        let coordinators = ClusterSecret("correct horse battery staple")
        #expect(coordinators.verify(proof: proof, nonce: self.nonce, agentName: "agent-1"))
    }

    @Test("a proof fails with another secret, another nonce or another agent name")
    func rejects() {
        let proof = self.secret.proof(nonce: self.nonce, agentName: "agent-1")
        let other = ClusterSecret("correct horse battery stapler")
        #expect(!other.verify(proof: proof, nonce: self.nonce, agentName: "agent-1"))
        #expect(!ClusterSecret("").verify(proof: proof, nonce: self.nonce, agentName: "agent-1"))
        #expect(!self.secret.verify(proof: proof, nonce: ClusterSecret.makeNonce(), agentName: "agent-1"))
        #expect(!self.secret.verify(proof: proof, nonce: self.nonce, agentName: "agent-2"))
        #expect(!self.secret.verify(proof: proof, nonce: self.nonce, agentName: "agent-10"))
    }

    @Test("a damaged or empty proof fails")
    func rejectsDamagedProof() {
        let proof = self.secret.proof(nonce: self.nonce, agentName: "agent-1")
        var bytes = Array(proof.utf8)
        let last = bytes.count - 1
        bytes[last] = bytes[last] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        let flipped = String(decoding: bytes, as: UTF8.self)
        #expect(flipped != proof)
        #expect(!self.secret.verify(proof: flipped, nonce: self.nonce, agentName: "agent-1"))
        #expect(!self.secret.verify(proof: String(proof.dropLast()), nonce: self.nonce, agentName: "agent-1"))
        #expect(!self.secret.verify(proof: proof + "0", nonce: self.nonce, agentName: "agent-1"))
        #expect(!self.secret.verify(proof: "", nonce: self.nonce, agentName: "agent-1"))
    }

    @Test("the proof is 64 lowercase hex digits and does not contain the secret")
    func proofDoesNotLeakSecret() {
        let proof = self.secret.proof(nonce: self.nonce, agentName: "agent-1")
        #expect(proof.count == 64)
        #expect(proof.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(!proof.contains("correct horse battery staple"))
        #expect(!proof.contains("staple"))
        let secretHex = Array("correct horse battery staple".utf8).map { String($0, radix: 16) }.joined()
        #expect(!proof.contains(secretHex))
    }

    /// Pins the wire format: HMAC-SHA256 keyed by the secret over "farm-agent-v1\n<nonce>\n<agent name>". An agent and
    /// a coordinator from different builds must agree on it. Reference value from
    /// `printf 'farm-agent-v1\n0123abcd\nagent-1' | openssl dgst -sha256 -hmac 'correct horse battery staple'`.
    @Test("the proof matches an independently computed HMAC-SHA256")
    func knownAnswer() {
        let proof = self.secret.proof(nonce: "0123abcd", agentName: "agent-1")
        #expect(proof == "616dcac96d099fcb797416c549112457ace8e7291e4e5b36c3e916b4f8fe4c3e")
    }

    @Test("nonces are 32 random bytes in hex, fresh every time")
    func nonces() {
        let nonces = (0..<100).map { _ in ClusterSecret.makeNonce() }
        #expect(Set(nonces).count == nonces.count)
        for nonce in nonces {
            #expect(nonce.count == 64)
            #expect(nonce.allSatisfy { "0123456789abcdef".contains($0) })
        }
    }
}
