import FarmAPI
import FarmProtocol
import Foundation
import Testing

/// The playback URL's token and the origin's path grammar, without a server.
@Suite("Playback signatures and origin paths")
struct PlaybackSignatureTests {
    let signer = PlaybackSigner(clusterSecret: ClusterSecret("cluster-secret"))
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func aTokenIsValidForItsJobUntilItExpires() {
        let token = self.signer.token(jobID: 42, expires: 1_800_000_060)
        #expect(self.signer.check(token[...], jobID: 42, now: self.now) == .valid(expires: 1_800_000_060))
        #expect(self.signer.check(token[...], jobID: 43, now: self.now) == .badSignature)
        #expect(self.signer.check(token[...], jobID: 42, now: self.now.addingTimeInterval(60)) == .expired)
    }

    @Test func everyCoordinatorWithTheSecretAcceptsItAndNoOtherKeyDoes() {
        let token = self.signer.token(jobID: 42, expires: 1_800_000_060)
        let sameSecret = PlaybackSigner(clusterSecret: ClusterSecret("cluster-secret"))
        #expect(sameSecret.check(token[...], jobID: 42, now: self.now) == .valid(expires: 1_800_000_060))
        #expect(
            PlaybackSigner(clusterSecret: ClusterSecret("other")).check(token[...], jobID: 42, now: self.now)
                == .otherKey
        )
        #expect(PlaybackSigner.random().check(token[...], jobID: 42, now: self.now) == .otherKey)
    }

    @Test func anAlteredTokenIsRefused() throws {
        let token = self.signer.token(jobID: 42, expires: 1_800_000_060)
        let parts = token.split(separator: ".").map(String.init)
        try #require(parts.count == 3 && parts[2].count == 64)
        // A later expiry with the old signature, and each signature digit changed.
        let later = "1800999999.\(parts[1]).\(parts[2])"
        #expect(self.signer.check(later[...], jobID: 42, now: self.now) == .badSignature)
        for index in [0, 31, 63] {
            var digits = Array(parts[2])
            digits[index] = digits[index] == "0" ? "1" : "0"
            let altered = "\(parts[0]).\(parts[1]).\(String(digits))"
            #expect(self.signer.check(altered[...], jobID: 42, now: self.now) == .badSignature)
        }
        for malformed in [
            "", "master.m3u8", "\(parts[0]).\(parts[1])", "\(parts[0]).\(parts[1]).\(parts[2].uppercased())",
            "\(parts[0]).\(parts[1]).\(parts[2].dropLast())", "-1.\(parts[1]).\(parts[2])", "\(token).x",
        ] {
            #expect(self.signer.check(malformed[...], jobID: 42, now: self.now) == .unsigned, "\(malformed)")
        }
    }

    @Test(arguments: [
        ("master.m3u8", ["master.m3u8"], OriginFileKind.m3u8),
        ("360p/playlist.m3u8", ["360p", "playlist.m3u8"], .m3u8),
        ("360p/init.mp4", ["360p", "init.mp4"], .mp4),
        ("360p/segment_00001.m4s", ["360p", "segment_00001.m4s"], .m4s),
        ("audio/segment_00001.ts", ["audio", "segment_00001.ts"], .ts),
        ("thumbnails.vtt", ["thumbnails.vtt"], .vtt),
        ("poster.jpg", ["poster.jpg"], .jpg),
    ])
    func aPathOfTheGrammarNamesAFileUnderTheFolder(raw: String, components: [String], kind: OriginFileKind) throws {
        let path = try #require(OriginPath(raw: raw[...]))
        #expect(path.components == components && path.kind == kind)
        #expect(path.file(in: "/out/job") == "/out/job/" + raw)
    }

    @Test(arguments: [
        "", "..", "../master.m3u8", "360p/../../etc/passwd", "%2e%2e/master.m3u8", "..%2fmaster.m3u8",
        "360p%2fplaylist.m3u8", "/etc/passwd.m3u8", "360p//playlist.m3u8", "360p/", "/master.m3u8",
        "360p\\playlist.m3u8", "..\\master.m3u8", "master.m3u8\u{0}", "mas\u{0}ter.m3u8", "./master.m3u8",
        ".m3u8", "master.", "master", "master.m3u8.m3u8", "master.txt", "a/b/c.m4s", "360p.x/init.mp4",
        "caf\u{e9}.jpg", String(repeating: "a", count: 65) + ".jpg",
    ])
    func aPathOutsideTheGrammarIsRefused(raw: String) {
        #expect(OriginPath(raw: raw[...]) == nil, "\(raw.debugDescription)")
    }

    @Test(
        arguments: [
            (nil, ByteRangeRequest.whole),
            ("bytes=0-99", .part(0...99)),
            ("bytes=10-", .part(10...999)),
            ("bytes=-100", .part(900...999)),
            ("bytes=-5000", .part(0...999)),
            ("bytes=990-5000", .part(990...999)),
            ("bytes=1000-", .unsatisfiable),
            ("bytes=-0", .unsatisfiable),
            ("bytes=0-1,5-6", .whole),
            ("bytes=5-1", .whole),
            ("items=0-1", .whole),
            ("bytes=a-b", .whole),
        ] as [(String?, ByteRangeRequest)]
    )
    func aRangeHeaderIsReadAsRFC9110Says(header: String?, expected: ByteRangeRequest) {
        #expect(ByteRangeRequest(header: header, size: 1000) == expected)
    }
}
