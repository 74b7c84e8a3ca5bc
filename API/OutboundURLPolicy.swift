import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network, `address/bits` (`10.0.0.0/8`, `fc00::/7`); a bare address is a network of one.
package struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 bytes.
    package var address: [UInt8]
    package var bits: Int

    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parse(String(parts[0])) else { return nil }
        let bits = parts.count == 2 ? Int(parts[1]) : address.count * 8
        guard let bits, (0...address.count * 8).contains(bits) else { return nil }
        self.address = address
        self.bits = bits
    }

    /// The bytes of an IPv4 or IPv6 address in text, or nil.
    package static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    package func contains(_ address: [UInt8]) -> Bool {
        guard address.count == self.address.count else { return false }
        var left = self.bits
        for (mine, theirs) in zip(self.address, address) where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
            guard mine & mask == theirs & mask else { return false }
            left -= 8
        }
        return true
    }

    package var description: String {
        let family = self.address.count == 4 ? AF_INET : AF_INET6
        var text = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = self.address.withUnsafeBytes { address in
            text.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) {
                    inet_ntop(family, address.baseAddress, $0.baseAddress, socklen_t($0.count))
                }
            }
        }
        return String(decoding: text.prefix { $0 != 0 }, as: UTF8.self) + "/\(self.bits)"
    }
}

/// A URL the coordinator will not fetch from or send to, and why.
package struct OutboundURLRefused: Error, CustomStringConvertible, Equatable {
    package var description: String
}

/// Which URLs the coordinator may reach on a client's word (a source to fetch, a webhook to send): `http` and
/// `https` only, and never an address inside the coordinator's own networks (loopback, link-local, where cloud
/// metadata services answer, private, carrier-grade NAT, multicast, reserved), unless the operator allows that
/// network (`--allow-url-network`). Otherwise any client could make the coordinator read its cloud credentials or
/// probe the machines beside it (server-side request forgery).
///
/// The host is resolved and every address it has is checked, before the request and again for each redirect. What
/// this cannot see is a name whose answer changes between the check and the connection (DNS rebinding); an egress
/// firewall for the coordinators closes that too (docs/api.md).
package struct OutboundURLPolicy: Sendable {
    /// Networks the operator lets clients name although they are internal.
    package var allowedNetworks: [IPNetwork]

    package init(allowedNetworks: [IPNetwork] = []) {
        self.allowedNetworks = allowedNetworks
    }

    /// The internal networks, each with what it is.
    static let internalNetworks: [(network: IPNetwork, name: String)] = [
        ("0.0.0.0/8", "a 'this network' address"), ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"), ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
        ("172.16.0.0/12", "a private address"), ("192.0.0.0/24", "an IETF protocol address"),
        ("192.168.0.0/16", "a private address"), ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"), ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"), ("::1/128", "a loopback address"),
        ("fc00::/7", "a unique local (private) address"), ("fe80::/10", "a link-local address"),
        ("ff00::/8", "a multicast address"),
    ].map { (IPNetwork($0.0)!, $0.1) }

    /// Why `address` may not be reached, or nil. An IPv4 address inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64
    /// `64:ff9b::a.b.c.d`, compatible `::a.b.c.d`) is judged as the IPv4 address it carries.
    package func refusal(of address: [UInt8]) -> String? {
        if self.allowedNetworks.contains(where: { $0.contains(address) }) { return nil }
        if address.count == 16 {
            let ipv4 = Array(address[12..<16])
            let mapped = address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xFF && address[11] == 0xFF
            let nat64 = Array(address[0..<12]) == [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]
            // `::` and `::1` are IPv6's own, not IPv4 inside it.
            let compatible = address[0..<12].allSatisfy { $0 == 0 } && ipv4 != [0, 0, 0, 0] && ipv4 != [0, 0, 0, 1]
            if mapped || nat64 || compatible { return self.refusal(of: ipv4) }
        }
        guard let match = Self.internalNetworks.first(where: { $0.network.contains(address) }) else { return nil }
        return "\(match.name), in \(match.network)"
    }

    /// The URL, checked: its form, then every address its host resolves to.
    package func check(_ text: String, purpose: String) async throws -> URL {
        let url = try self.checkForm(text, purpose: purpose)
        let host = url.host ?? ""
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let addresses = try await Self.resolve(bare)
        guard !addresses.isEmpty else {
            throw OutboundURLRefused(description: "the \(purpose) URL's host \(bare) does not resolve; check the URL")
        }
        for address in addresses {
            if let reason = self.refusal(of: address) {
                throw OutboundURLRefused(
                    description: "the \(purpose) URL's host \(bare) is \(reason): the coordinator does not reach into "
                        + "its own networks on a client's word; give a public URL, or ask the farm's operator to "
                        + "allow that network (--allow-url-network)"
                )
            }
        }
        return url
    }

    /// The URL's form alone: `http` or `https`, a host, no user name or password in it, at most 2,048 characters.
    package func checkForm(_ text: String, purpose: String) throws -> URL {
        guard text.utf8.count <= 2048, let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw OutboundURLRefused(description: "the \(purpose) URL is not a URL of at most 2,048 characters")
        }
        guard scheme == "http" || scheme == "https" else {
            throw OutboundURLRefused(description: "the \(purpose) URL's scheme is \(scheme); use https:// or http://")
        }
        guard let host = url.host, !host.isEmpty else {
            throw OutboundURLRefused(description: "the \(purpose) URL has no host; give a URL like https://host/path")
        }
        guard url.user == nil, url.password == nil else {
            throw OutboundURLRefused(
                description: "the \(purpose) URL carries a user name or password, which would be kept and logged; "
                    + "use a URL that needs none (a presigned one, for example)"
            )
        }
        return url
    }

    /// The addresses `host` resolves to (getaddrinfo, on the thread pool).
    static func resolve(_ host: String) async throws -> [[UInt8]] {
        if let literal = IPNetwork.parse(host) { return [literal] }
        return try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var first: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &first) == 0 else { return [] }
            defer { freeaddrinfo(first) }
            var addresses: [[UInt8]] = []
            var next = first
            while let info = next {
                switch info.pointee.ai_family {
                case AF_INET:
                    info.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        var address = $0.pointee.sin_addr
                        addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                    }
                case AF_INET6:
                    info.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        var address = $0.pointee.sin6_addr
                        addresses.append(withUnsafeBytes(of: &address) { Array($0) })
                    }
                default: break
                }
                next = info.pointee.ai_next
            }
            return addresses
        }
    }
}
