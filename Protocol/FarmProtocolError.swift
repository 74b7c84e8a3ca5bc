/// Why a connection was closed by the protocol layer. The description names the cause and what to do.
package struct FarmProtocolError: Error, Equatable, CustomStringConvertible {
    package enum Code: Equatable, Sendable {
        case frameTooLarge(length: Int, maximum: Int)
        case truncatedFrame(bytes: Int)
        case malformed(String)
        case unexpected(String)
        case versionMismatch(peer: Int, ours: Int)
        case authenticationFailed
    }

    package let code: Code

    package static func frameTooLarge(length: Int, maximum: Int) -> Self {
        Self(code: .frameTooLarge(length: length, maximum: maximum))
    }
    package static func truncatedFrame(bytes: Int) -> Self { Self(code: .truncatedFrame(bytes: bytes)) }
    package static func malformed(_ what: String) -> Self { Self(code: .malformed(what)) }
    package static func unexpected(_ what: String) -> Self { Self(code: .unexpected(what)) }
    package static func versionMismatch(peer: Int, ours: Int) -> Self {
        Self(code: .versionMismatch(peer: peer, ours: ours))
    }
    package static let authenticationFailed = Self(code: .authenticationFailed)

    package var description: String {
        switch self.code {
        case .frameTooLarge(let length, let maximum):
            "frame of \(length) bytes is over the limit of \(maximum) bytes; the peer is not a farm peer or "
                + "uses a larger --max-frame-bytes: use the same limit on both sides"
        case .truncatedFrame(let bytes):
            "connection closed in the middle of a frame (\(bytes) bytes left unread)"
        case .malformed(let what):
            "malformed message: \(what); the peer is not a farm peer or speaks another protocol version"
        case .unexpected(let what):
            "unexpected message: \(what)"
        case .versionMismatch(let peer, let ours):
            "peer speaks farm protocol version \(peer), this build speaks \(ours): run the same farm version on "
                + "coordinator and agents"
        case .authenticationFailed:
            "authentication failed: the agent's cluster secret does not match the coordinator's; "
                + "give both the same --secret (or FARM_SECRET)"
        }
    }
}
