import Crypto
import FarmAPI
import FarmCoordinator
import FarmTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// tus 1.0 over real HTTP on loopback against a real PostgreSQL: the rules a client relies on. (tuspy itself, a
/// broken connection and a killed coordinator: EndToEndTests' UploadsThroughAFarmTests.)
@Suite("tus uploads", .requiresPostgreSQL)
struct UploadsTests {
    static let tus: HTTPFields = [Self.name("Tus-Resumable"): "1.0.0"]

    static func name(_ text: String) -> HTTPFields.Element.Name { HTTPFields.Element.Name(text)! }

    static func headers(_ key: APIKey, _ extra: [String: String] = [:]) -> HTTPFields {
        var headers = Self.tus
        headers[.authorization] = "Bearer \(key.text)"
        for (name, value) in extra { headers[Self.name(name)] = value }
        return headers
    }

    /// The headers of a piece from `offset`, with the SHA-1 of `checksum` as its `Upload-Checksum` when given.
    static func piece(_ offset: Int, checksum: [UInt8]? = nil) -> [String: String] {
        var headers = ["Content-Type": "application/offset+octet-stream", "Upload-Offset": "\(offset)"]
        if let checksum {
            headers["Upload-Checksum"] = "sha1 " + Data(Insecure.SHA1.hash(data: checksum)).base64EncodedString()
        }
        return headers
    }

    @Test func anUploadFollowsTheTusRulesAndBecomesAJobSource() async throws {
        try await APIServerTests.withServer(maximumUploadSize: 1 << 20) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let (_, other) = try await server.keys.create(tenant: "other")
            let bytes = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

            let options = try await server.client.execute(
                uri: "/v1/uploads",
                method: .options,
                headers: Self.headers(acme)
            )
            #expect(options.status == .noContent && options.headers[Self.name("Tus-Version")] == "1.0.0")
            #expect(options.headers[Self.name("Tus-Extension")]?.contains("creation-with-upload") == true)
            #expect(options.headers[Self.name("Tus-Checksum-Algorithm")] == "sha1")

            var noVersion = Self.headers(acme, ["Upload-Length": "3000"])
            noVersion[Self.name("Tus-Resumable")] = nil
            let refused = try await server.client.execute(uri: "/v1/uploads", method: .post, headers: noVersion)
            #expect(refused.status == .preconditionFailed && refused.headers[Self.name("Tus-Version")] == "1.0.0")
            let tooLarge = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: Self.headers(acme, ["Upload-Length": "\((1 << 20) + 1)"])
            )
            #expect(tooLarge.status == .contentTooLarge)
            #expect(String(buffer: tooLarge.body).contains("limit of 1048576 bytes"))
            let badSettings = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: Self.headers(
                    acme,
                    [
                        "Upload-Length": "3000",
                        "Upload-Metadata": "farm-settings " + Data(#"{"crff": 1}"#.utf8).base64EncodedString(),
                    ]
                )
            )
            #expect(
                badSettings.status == .badRequest && String(buffer: badSettings.body).contains("unknown field crff")
            )

            // Creation with the first 1000 bytes.
            let created = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: Self.headers(
                    acme,
                    ["Upload-Length": "3000", "Content-Type": "application/offset+octet-stream"]
                ),
                body: ByteBuffer(bytes: bytes[0..<1000])
            )
            try #require(created.status == .created, "\(String(buffer: created.body))")
            let location = try #require(created.headers[.location])
            #expect(created.headers[Self.name("Upload-Offset")] == "1000")
            #expect(created.headers[Self.name("Upload-Expires")]?.hasSuffix(" GMT") == true)
            let id = String(location.dropFirst("/v1/uploads/".count))

            let wrongOffset = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: Self.headers(acme, Self.piece(500)),
                body: ByteBuffer(bytes: bytes[1000..<2000])
            )
            #expect(
                wrongOffset.status == .conflict && String(buffer: wrongOffset.body).contains("send the bytes from 1000")
            )
            let badChecksum = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: Self.headers(acme, Self.piece(1000, checksum: [1, 2, 3])),
                body: ByteBuffer(bytes: bytes[1000..<2000])
            )
            #expect(badChecksum.status.code == 460, "\(badChecksum.status)")
            let afterRefusal =
                try FileManager.default.attributesOfItem(atPath: "\(server.uploads)/\(id)")[.size] as? Int
            #expect(afterRefusal == 1000, "a refused piece leaves nothing in the file")
            #expect(badChecksum.headers[Self.name("Tus-Resumable")] == "1.0.0", "every answer says Tus-Resumable")
            let wrongType = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: Self.headers(acme, ["Upload-Offset": "1000", "Content-Type": "application/json"]),
                body: ByteBuffer(bytes: bytes[1000..<2000])
            )
            #expect(wrongType.status == .unsupportedMediaType)
            let head = try await server.client.execute(uri: location, method: .head, headers: Self.headers(acme))
            #expect(
                head.status == .ok && head.headers[Self.name("Upload-Offset")] == "1000",
                "nothing of a refused piece is kept"
            )
            #expect(head.headers[Self.name("Upload-Length")] == "3000" && head.headers[.cacheControl] == "no-store")
            #expect(
                try await server.client.execute(uri: location, method: .head, headers: Self.headers(other)).status
                    == .notFound
            )
            let foreignPatch = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: Self.headers(other, Self.piece(1000)),
                body: ByteBuffer(bytes: bytes[1000..<2000])
            )
            #expect(foreignPatch.status == .notFound)
            let foreignDelete = try await server.client.execute(
                uri: location,
                method: .delete,
                headers: Self.headers(other)
            )
            #expect(foreignDelete.status == .notFound)
            let traversal = try await server.client.execute(
                uri: "/v1/uploads/..%2F..%2Fetc%2Fpasswd",
                method: .head,
                headers: Self.headers(acme)
            )
            #expect(traversal.status == .notFound)
            var keyless = Self.tus
            keyless[Self.name("Upload-Length")] = "10"
            let unauthorized = try await server.client.execute(uri: "/v1/uploads", method: .post, headers: keyless)
            #expect(unauthorized.status == .unauthorized && unauthorized.headers[Self.name("Tus-Resumable")] == "1.0.0")

            let early = try await server.request(.post, "/v1/jobs", key: acme, json: #"{"upload": "\#(id)"}"#)
            #expect(early.status == .conflict && (early.body["detail"] as? String)?.contains("1000 of 3000") == true)

            for (start, end) in [(1000, 2000), (2000, 3000)] {
                let piece = Array(bytes[start..<end])
                let answer = try await server.client.execute(
                    uri: location,
                    method: .patch,
                    headers: Self.headers(acme, Self.piece(start, checksum: piece)),
                    body: ByteBuffer(bytes: piece)
                )
                #expect(answer.status == .noContent && answer.headers[Self.name("Upload-Offset")] == "\(end)")
            }
            let beyond = try await server.client.execute(
                uri: location,
                method: .patch,
                headers: Self.headers(acme, Self.piece(3000)),
                body: ByteBuffer(bytes: [1])
            )
            #expect(beyond.status == .contentTooLarge)
            let stored = try Data(contentsOf: URL(fileURLWithPath: "\(server.uploads)/\(id)"))
            #expect(stored == Data(bytes), "the stored file is the bytes sent")

            let both = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"upload": "\#(id)", "source": {"path": "/x"}}"#
            )
            #expect(both.status == .badRequest)
            #expect(
                try await server.request(.post, "/v1/jobs", key: other, json: #"{"upload": "\#(id)"}"#).status
                    == .unprocessableContent
            )
            let job = try await server.request(
                .post,
                "/v1/jobs",
                key: acme,
                json: #"{"upload": "\#(id)", "rungs": ["240p"]}"#
            )
            #expect(job.status == .created, "\(job.body)")
            let inUse = try await server.client.execute(uri: location, method: .delete, headers: Self.headers(acme))
            #expect(inUse.status == .conflict, "an upload a job reads stays")
        }
    }

    /// Metadata `farm-settings` makes the job when the last byte is stored, named by `Farm-Job`; termination
    /// removes an upload and its file.
    @Test func farmSettingsMakeTheJobAndTerminationRemovesAnUpload() async throws {
        try await APIServerTests.withServer { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            let settings = Data(#"{"rungs": ["240p"], "priority": 3}"#.utf8).base64EncodedString()
            let created = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: Self.headers(
                    acme,
                    [
                        "Upload-Length": "4", "Upload-Metadata": "filename YS5tcDQ=,farm-settings \(settings)",
                        "Content-Type": "application/offset+octet-stream",
                    ]
                ),
                body: ByteBuffer(bytes: [1, 2, 3, 4])
            )
            try #require(created.status == .created, "\(String(buffer: created.body))")
            let job = try #require(created.headers[Self.name("Farm-Job")])
            let shown = try await server.request(.get, job, key: acme)
            #expect(shown.status == .ok && shown.body["priority"] as? Int == 3, "\(shown.body)")
            let location = try #require(created.headers[.location])
            let head = try await server.client.execute(uri: location, method: .head, headers: Self.headers(acme))
            #expect(head.headers[Self.name("Farm-Job")] == job)
            #expect(head.headers[Self.name("Upload-Metadata")] == "filename YS5tcDQ=,farm-settings \(settings)")

            let other = try await server.client.execute(
                uri: "/v1/uploads",
                method: .post,
                headers: Self.headers(acme, ["Upload-Length": "10"])
            )
            let otherLocation = try #require(other.headers[.location])
            let path = "\(server.uploads)/\(otherLocation.dropFirst("/v1/uploads/".count))"
            #expect(FileManager.default.fileExists(atPath: path))
            let deleted = try await server.client.execute(
                uri: otherLocation,
                method: .delete,
                headers: Self.headers(acme)
            )
            #expect(deleted.status == .noContent && !FileManager.default.fileExists(atPath: path))
            #expect(
                try await server.client.execute(uri: otherLocation, method: .head, headers: Self.headers(acme)).status
                    == .notFound
            )
        }
    }

    /// The janitor's query: an expired upload goes unless a job needs it, a job that has not ended, or one that
    /// ended less than the upload's lifetime ago (it may be retried from it).
    @Test func expiredUploadsGoOnceNoJobNeedsThem() async throws {
        try await APIServerTests.withServer(uploadLifetime: 1) { server in
            let (_, acme) = try await server.keys.create(tenant: "acme")
            func create(_ bytes: [UInt8]) async throws -> String {
                let created = try await server.client.execute(
                    uri: "/v1/uploads",
                    method: .post,
                    headers: Self.headers(
                        acme,
                        ["Upload-Length": "\(bytes.count)", "Content-Type": "application/offset+octet-stream"]
                    ),
                    body: ByteBuffer(bytes: bytes)
                )
                return String(try #require(created.headers[.location]).dropFirst("/v1/uploads/".count))
            }
            let unused = try await create([1, 2])
            let used = try await create([3, 4])
            let job = try await server.request(.post, "/v1/jobs", key: acme, json: #"{"upload": "\#(used)"}"#)
            let jobID = try #require(APIServerTests.id(job.body))
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await server.store.removeExpiredUploads() == ["\(server.uploads)/\(unused)"])
            #expect(try await server.store.cancel(jobID: jobID))
            #expect(try await server.store.removeExpiredUploads().isEmpty, "a job that just ended may be retried")
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await server.store.removeExpiredUploads() == ["\(server.uploads)/\(used)"])
        }
    }
}
