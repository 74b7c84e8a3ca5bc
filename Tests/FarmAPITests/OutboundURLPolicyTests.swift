import FarmAPI
import Foundation
import Testing

/// Which URLs a client may make the coordinator reach: never its own networks, unless the operator allows one.
@Suite("Outbound URL policy")
struct OutboundURLPolicyTests {
    @Test(
        arguments: [
            ("http://127.0.0.1/x.mp4", "loopback"), ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.0.0.7/x", "private"), ("http://172.20.1.1/x", "private"), ("http://192.168.1.1/x", "private"),
            ("http://100.64.0.1/x", "carrier-grade NAT"), ("http://0.0.0.0:8080/x", "this network"),
            ("http://[::1]/x", "loopback"), ("http://[::ffff:127.0.0.1]/x", "loopback"),
            ("http://[::ffff:169.254.169.254]/x", "link-local"), ("http://[fd12::1]/x", "unique local"),
            ("http://[fe80::1]/x", "link-local"), ("http://localhost:7400/", "loopback"),
            ("http://2130706433/", "loopback"), ("http://127.1/", "loopback"), ("http://224.0.0.1/", "multicast"),
        ]
    )
    func anAddressInsideTheCoordinatorsNetworksIsRefusedNamingWhatItIs(url: String, what: String) async throws {
        let error = await #expect(throws: OutboundURLRefused.self) {
            try await OutboundURLPolicy().check(url, purpose: "source")
        }
        #expect(error?.description.contains(what) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("--allow-url-network") == true)
    }

    @Test func publicAddressesPassAndAnAllowedNetworkIsLetThrough() async throws {
        let policy = OutboundURLPolicy()
        _ = try await policy.check("https://93.184.215.14/video.mp4?sig=1", purpose: "source")
        _ = try await policy.check("http://[2606:4700::1111]:8080/v", purpose: "source")
        let allowing = OutboundURLPolicy(allowedNetworks: [try #require(IPNetwork("127.0.0.1/32"))])
        _ = try await allowing.check("http://127.0.0.1:9000/x", purpose: "source")
        await #expect(throws: OutboundURLRefused.self) {
            try await allowing.check("http://127.0.0.2:9000/x", purpose: "source")
        }
    }

    @Test(
        arguments: [
            ("ftp://example.com/x", "scheme"), ("file:///etc/passwd", "scheme"), ("http:///x", "host"),
            ("https://user:pw@example.com/x", "password"), ("not a url", "not a URL"),
            ("https://example.com/" + String(repeating: "a", count: 2100), "2,048"),
        ]
    )
    func aURLOfTheWrongFormIsRefusedBeforeAnyLookup(url: String, what: String) throws {
        let error = #expect(throws: OutboundURLRefused.self) {
            try OutboundURLPolicy().checkForm(url, purpose: "source")
        }
        #expect(error?.description.contains(what) == true, "\(error?.description ?? "")")
    }

    @Test func networksParseAndMatchByTheirPrefix() throws {
        let network = try #require(IPNetwork("10.1.2.0/23"))
        #expect(network.contains(try #require(IPNetwork.parse("10.1.3.255"))))
        #expect(!network.contains(try #require(IPNetwork.parse("10.1.4.0"))))
        #expect(!network.contains(try #require(IPNetwork.parse("::ffff:10.1.3.1"))), "families do not mix")
        #expect(network.description == "10.1.2.0/23")
        #expect(IPNetwork("10.0.0.0/33") == nil && IPNetwork("example.com") == nil && IPNetwork("fd00::/8") != nil)
    }
}

/// The signature of a webhook, as a receiver checks it (docs/api.md).
@Suite("Webhook signatures")
struct WebhookSignatureTests {
    let body = Data(#"{"id":"7","type":"job.ready"}"#.utf8)
    let secret = "whsec-0123456789abcdef"

    @Test func aSignatureVerifiesForItsBodySecretAndTimeOnly() {
        let header = WebhookSignature.header(body: self.body, secret: self.secret, timestamp: 1_800_000_000)
        #expect(header.hasPrefix("t=1800000000,v1=") && header.count == "t=1800000000,v1=".count + 64)
        #expect(WebhookSignature.isValid(header: header, body: self.body, secret: self.secret, now: 1_800_000_100))
        #expect(!WebhookSignature.isValid(header: header, body: self.body, secret: self.secret, now: 1_800_000_301))
        #expect(
            !WebhookSignature.isValid(header: header, body: Data("{}".utf8), secret: self.secret, now: 1_800_000_000)
        )
        #expect(
            !WebhookSignature.isValid(header: header, body: self.body, secret: "another-secret-16b", now: 1_800_000_000)
        )
        let moved = header.replacingOccurrences(of: "t=1800000000", with: "t=1800000001")
        #expect(!WebhookSignature.isValid(header: moved, body: self.body, secret: self.secret, now: 1_800_000_000))
        #expect(!WebhookSignature.isValid(header: "v1=00", body: self.body, secret: self.secret, now: 1_800_000_000))
    }

    @Test func theSignatureIsTheDocumentedHMAC() {
        // From docs/api.md: HMAC-SHA256("secret-for-the-docs", "1800000000.{}") in hex, computed with Python's hmac.
        let header = WebhookSignature.header(
            body: Data("{}".utf8),
            secret: "secret-for-the-docs",
            timestamp: 1_800_000_000
        )
        #expect(header == "t=1800000000,v1=\(Self.documented)")
    }

    static let documented = "224397909e2addc2dcc97dd8ce9353c2e6b93844b61cdc7a12119347e2b91abe"

    @Test func retriesWaitTwiceAsLongEachTimeUpToTheLongestWait() {
        let retries = WebhookRetries(firstWait: 10, longestWait: 3600)
        #expect(retries.wait(after: 1, jitter: 0.5) == 10)
        #expect(retries.wait(after: 2, jitter: 0.5) == 20)
        #expect(retries.wait(after: 4, jitter: 0.5) == 80)
        #expect(retries.wait(after: 30, jitter: 0.5) == 3600)
        #expect(retries.wait(after: 1, jitter: 0) == 7.5 && retries.wait(after: 1, jitter: 1) == 12.5)
    }
}
