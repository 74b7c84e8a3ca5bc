import FarmAPI
import FarmCoordinator
import FarmProtocol
import FarmTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// The origin over real HTTP against a real PostgreSQL: `/playback` behind the key, the files behind the signature,
/// with the headers players and caches rely on. The job's output folder is written here and the job set ready in
/// the database; ffmpeg playing a real farm's output through the origin is `OriginPlaybackThroughAFarmTests`.
@Suite("HLS origin", .requiresPostgreSQL)
struct OriginTests {
    static let segment = Data((0..<1000).map { UInt8($0 % 251) })
    static let playlist = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\n360p/playlist.m3u8\n"
    static let eTag = HTTPFields.Element.Name("ETag")!
    static let ifNoneMatch = HTTPFields.Element.Name("If-None-Match")!
    /// The server's signing key, so that a test can make the tokens `/playback` would never give (expired ones).
    static let signer = PlaybackSigner(clusterSecret: ClusterSecret("origin-tests"))

    struct Origin {
        var server: APIServerTests.Server
        var key: APIKey
        var jobID: Int64
        var folder: String

        func get(
            _ uri: String,
            method: HTTPRequest.Method = .get,
            headers: HTTPFields = [:]
        ) async throws -> (status: HTTPResponse.Status, headers: HTTPFields, body: Data) {
            let response = try await self.server.client.execute(uri: uri, method: method, headers: headers, body: nil)
            return (response.status, response.headers, Data(buffer: response.body))
        }

        /// The signed master URL `/playback` answers with.
        func signedMaster(expires: Int? = nil) async throws -> String {
            let answer = try await self.server.request(
                .get,
                "/v1/jobs/\(self.jobID)/playback" + (expires.map { "?expires=\($0)" } ?? ""),
                key: self.key
            )
            try #require(answer.status == .ok, "\(answer.body)")
            return try #require(answer.body["url"] as? String)
        }
    }

    /// A server with tenant acme's job, submitted through the API, made ready with an output folder of a master
    /// playlist, a rendition folder (playlist, init, a segment) and a poster.
    static func withReadyJob(_ body: @Sendable (Origin) async throws -> Void) async throws {
        try await APIServerTests.withServer(playbackSigner: Self.signer) { server in
            let (_, key) = try await server.keys.create(tenant: "acme")
            let source = server.sources + "/clip.mp4"
            try Data("not decoded: no planner runs here".utf8).write(to: URL(fileURLWithPath: source))
            let created = try await server.request(
                .post,
                "/v1/jobs",
                key: key,
                json: #"{"source": {"path": "\#(source)"}, "rungs": ["360p"]}"#
            )
            let id = try #require(APIServerTests.id(created.body), "\(created.body)")
            let folder = (server.sources as NSString).deletingLastPathComponent + "/ready-output"
            try FileManager.default.createDirectory(atPath: folder + "/360p", withIntermediateDirectories: true)
            try Data(Self.playlist.utf8).write(to: URL(fileURLWithPath: folder + "/master.m3u8"))
            try Data("#EXTM3U\n".utf8).write(to: URL(fileURLWithPath: folder + "/360p/playlist.m3u8"))
            try Data("init".utf8).write(to: URL(fileURLWithPath: folder + "/360p/init.mp4"))
            try Self.segment.write(to: URL(fileURLWithPath: folder + "/360p/segment_00001.m4s"))
            try Data([0xFF, 0xD8, 0xFF]).write(to: URL(fileURLWithPath: folder + "/poster.jpg"))
            let origin = Origin(server: server, key: key, jobID: id, folder: folder)
            // Still submitted: nothing to play yet.
            let early = try await server.request(.get, "/v1/jobs/\(id)/playback", key: key)
            #expect(early.status == .conflict && (early.body["detail"] as? String)?.contains("wait") == true)
            try await server.store.client.query(
                "UPDATE jobs SET state = \(JobState.ready), output_dir = \(folder) WHERE id = \(id)",
                logger: testLogger
            )
            try await body(origin)
        }
    }

    @Test func playbackNeedsTheKeyOfTheJobsTenant() async throws {
        try await Self.withReadyJob { origin in
            let missing = try await origin.server.request(.get, "/v1/jobs/\(origin.jobID)/playback")
            #expect(missing.status == .unauthorized)
            let (_, other) = try await origin.server.keys.create(tenant: "other")
            let hidden = try await origin.server.request(.get, "/v1/jobs/\(origin.jobID)/playback", key: other)
            #expect(
                hidden.status == .notFound && (hidden.body["detail"] as? String)?.contains("does not exist") == true
            )

            let answer = try await origin.server.request(
                .get,
                "/v1/jobs/\(origin.jobID)/playback?expires=120",
                key: origin.key
            )
            try #require(answer.status == .ok, "\(answer.body)")
            let url = try #require(answer.body["url"] as? String)
            #expect(url.hasPrefix("/v1/jobs/\(origin.jobID)/hls/") && url.hasSuffix("/master.m3u8"))
            let expiresAt = try #require((answer.body["expiresAt"] as? String).flatMap(ISO8601DateFormatter().date))
            #expect(abs(expiresAt.timeIntervalSinceNow - 120) < 5)
            for bad in ["59", "604801", "soon"] {
                let refused = try await origin.server.request(
                    .get,
                    "/v1/jobs/\(origin.jobID)/playback?expires=\(bad)",
                    key: origin.key
                )
                #expect(refused.status == .badRequest, "expires=\(bad)")
            }
        }
    }

    @Test func theSignedURLServesEveryFileUnderItWithItsTypeAndCaching() async throws {
        try await Self.withReadyJob { origin in
            let master = try await origin.signedMaster()
            let base = String(master.dropLast("master.m3u8".count))
            let playlist = try await origin.get(master)
            #expect(playlist.status == .ok && String(decoding: playlist.body, as: UTF8.self) == Self.playlist)
            #expect(playlist.headers[.contentType] == "application/vnd.apple.mpegurl")
            #expect(playlist.headers[.cacheControl] == "public, max-age=60")
            for (path, type) in [
                ("360p/playlist.m3u8", "application/vnd.apple.mpegurl"), ("360p/init.mp4", "video/mp4"),
                ("360p/segment_00001.m4s", "video/iso.segment"), ("poster.jpg", "image/jpeg"),
            ] {
                let file = try await origin.get(base + path)
                #expect(file.status == .ok && file.headers[.contentType] == type, "\(path)")
                let onDisk = try Data(contentsOf: URL(fileURLWithPath: origin.folder + "/" + path))
                #expect(file.body == onDisk, "\(path)")
                #expect(file.headers[.acceptRanges] == "bytes")
            }
            let segment = try await origin.get(base + "360p/segment_00001.m4s")
            #expect(segment.headers[.cacheControl] == "public, max-age=31536000, immutable")
            #expect(segment.headers[.contentLength] == "1000")
            let head = try await origin.get(base + "360p/segment_00001.m4s", method: .head)
            #expect(head.status == .ok && head.body.isEmpty && head.headers[Self.eTag] == segment.headers[Self.eTag])

            // Not a file of the output, or not a type the origin serves.
            #expect(try await origin.get(base + "360p/segment_00002.m4s").status == .notFound)
            try Data("secret".utf8).write(to: URL(fileURLWithPath: origin.folder + "/notes.txt"))
            #expect(try await origin.get(base + "notes.txt").status == .badRequest)
        }
    }

    @Test func rangesAndETagsAreAnsweredAsPlayersAndCachesExpect() async throws {
        try await Self.withReadyJob { origin in
            let master = try await origin.signedMaster()
            let uri = String(master.dropLast("master.m3u8".count)) + "360p/segment_00001.m4s"
            let part = try await origin.get(uri, headers: [.range: "bytes=100-199"])
            #expect(part.status == .partialContent && part.body == Self.segment[100...199])
            #expect(part.headers[.contentRange] == "bytes 100-199/1000")
            let tail = try await origin.get(uri, headers: [.range: "bytes=-10"])
            #expect(tail.status == .partialContent && tail.body == Self.segment.suffix(10))
            let open = try await origin.get(uri, headers: [.range: "bytes=990-"])
            #expect(open.status == .partialContent && open.headers[.contentRange] == "bytes 990-999/1000")
            let outside = try await origin.get(uri, headers: [.range: "bytes=1000-"])
            #expect(outside.status == .rangeNotSatisfiable && outside.headers[.contentRange] == "bytes */1000")
            let several = try await origin.get(uri, headers: [.range: "bytes=0-1,5-6"])
            #expect(several.status == .ok && several.body == Self.segment)

            let eTag = try #require(part.headers[Self.eTag])
            #expect(eTag.hasPrefix("\"") && eTag.hasSuffix("\""))
            let cached = try await origin.get(uri, headers: [Self.ifNoneMatch: eTag])
            #expect(cached.status == .notModified && cached.body.isEmpty && cached.headers[Self.eTag] == eTag)
            let stale = try await origin.get(uri, headers: [Self.ifNoneMatch: "\"other\""])
            #expect(stale.status == .ok && stale.body == Self.segment)
            let otherFile = try await origin.get(String(master.dropLast("master.m3u8".count)) + "360p/init.mp4")
            #expect(otherFile.headers[Self.eTag] != eTag)
        }
    }

    @Test func anUnsignedAlteredOrExpiredURLIsForbidden() async throws {
        try await Self.withReadyJob { origin in
            let master = try await origin.signedMaster()
            let token = master.split(separator: "/")[4]
            let parts = token.split(separator: ".")
            var signature = Array(parts[2])
            signature[0] = signature[0] == "a" ? "b" : "a"
            let id = origin.jobID
            let signer = PlaybackSigner.random()
            for uri in [
                "/v1/jobs/\(id)/hls/master.m3u8",
                "/v1/jobs/\(id)/hls/\(parts[0]).\(parts[1]).\(String(signature))/master.m3u8",
                "/v1/jobs/\(id)/hls/\(Int(parts[0])! + 1).\(parts[1]).\(parts[2])/master.m3u8",
                "/v1/jobs/\(id + 1)/hls/\(token)/master.m3u8",
                "/v1/jobs/\(id)/hls/\(signer.token(jobID: id, expires: 4_000_000_000))/master.m3u8",
            ] {
                let refused = try await origin.get(uri)
                #expect(refused.status == .forbidden, "\(uri)")
                #expect(refused.headers[.contentType] == "application/problem+json")
                let problem = try JSONSerialization.jsonObject(with: refused.body) as? [String: Any]
                #expect((problem?["detail"] as? String)?.contains("/playback") == true, "\(uri)")
            }
            // Rightly signed by the server's key, a second ago.
            let past = Int64(Date().timeIntervalSince1970) - 1
            let expired = try await origin.get(
                "/v1/jobs/\(id)/hls/\(Self.signer.token(jobID: id, expires: past))/master.m3u8"
            )
            #expect(expired.status == .forbidden)
            #expect(String(decoding: expired.body, as: UTF8.self).contains("expired"))
        }
    }

    @Test func aTraversalOrALinkOutOfTheFolderFindsNothing() async throws {
        try await Self.withReadyJob { origin in
            let master = try await origin.signedMaster()
            let base = String(master.dropLast("master.m3u8".count))
            let outside = (origin.folder as NSString).deletingLastPathComponent + "/outside.m3u8"
            try Data("#EXTM3U\n# not the job's\n".utf8).write(to: URL(fileURLWithPath: outside))
            for path in [
                "../outside.m3u8", "360p/../../outside.m3u8", "%2e%2e/outside.m3u8", "..%2foutside.m3u8",
                "360p%2f..%2f..%2foutside.m3u8", "360p//playlist.m3u8", "360p%5cplaylist.m3u8",
                "master.m3u8%00", "a/b/c.m3u8", "",
            ] {
                let refused = try await origin.get(base + path)
                #expect([.badRequest, .notFound].contains(refused.status), "\(path): \(refused.status)")
                #expect(String(decoding: refused.body, as: UTF8.self).contains("not the job's") == false)
            }
            // A link inside the folder that leads out of it.
            try FileManager.default.createSymbolicLink(
                atPath: origin.folder + "/linked.m3u8",
                withDestinationPath: outside
            )
            let linked = try await origin.get(base + "linked.m3u8")
            #expect(linked.status == .notFound, "a link out of the output folder is followed")
        }
    }
}
