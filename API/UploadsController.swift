import FarmCoordinator
import Foundation
import Hummingbird

/// `/v1/uploads`: resumable uploads, tus 1.0 (https://tus.io/protocols/resumable-upload) with the creation,
/// creation-with-upload, termination, checksum (sha1) and expiration extensions (docs/api.md, "Uploads").
///
/// An upload's bytes are in one file of the upload folder and its offset in PostgreSQL; a piece counts once it is
/// fsynced, so a PATCH cut off midway keeps what it stored, and a coordinator killed midway loses only what it had
/// not fsynced: the client asks (HEAD) and carries on, against it or another coordinator with the same folder.
package struct UploadsController: Sendable {
    let store: JobStore
    let jobs: JobsController
    /// Where the uploads' files are.
    let folder: String
    /// The largest upload a key may make, in bytes.
    let maximumSize: Int64
    /// How long an upload lasts after it is created (and, once a job reads it, after the job ends).
    let lifetime: TimeInterval

    static let version = "1.0.0"
    static let extensions = "creation,creation-with-upload,termination,checksum,expiration"
    static let tusResumable = HTTPFields.Element.Name("Tus-Resumable")!
    static let tusVersion = HTTPFields.Element.Name("Tus-Version")!
    static let tusExtension = HTTPFields.Element.Name("Tus-Extension")!
    static let tusMaxSize = HTTPFields.Element.Name("Tus-Max-Size")!
    static let tusChecksumAlgorithm = HTTPFields.Element.Name("Tus-Checksum-Algorithm")!
    static let uploadLength = HTTPFields.Element.Name("Upload-Length")!
    static let uploadOffset = HTTPFields.Element.Name("Upload-Offset")!
    static let uploadMetadata = HTTPFields.Element.Name("Upload-Metadata")!
    static let uploadExpires = HTTPFields.Element.Name("Upload-Expires")!
    static let uploadChecksum = HTTPFields.Element.Name("Upload-Checksum")!
    static let uploadDeferLength = HTTPFields.Element.Name("Upload-Defer-Length")!
    /// The job made from the upload (its `farm-settings` metadata), once it is complete.
    static let farmJob = HTTPFields.Element.Name("Farm-Job")!
    static let offsetStream = "application/offset+octet-stream"

    /// Adds the routes under `group` (at `/v1/uploads`) and returns their operations, as docs/openapi.yaml names them.
    package func addRoutes(to group: RouterGroup<APIRequestContext>) -> [String] {
        group.on("", method: .options, use: self.options)
        group.post(use: self.create)
        group.head("{id}", use: self.head)
        group.patch("{id}", use: self.patch)
        group.delete("{id}", use: self.terminate)
        return [
            "OPTIONS /v1/uploads", "POST /v1/uploads", "HEAD /v1/uploads/{id}", "PATCH /v1/uploads/{id}",
            "DELETE /v1/uploads/{id}",
        ]
    }

    @Sendable func options(_ request: Request, context: APIRequestContext) async throws -> Response {
        Response(
            status: .noContent,
            headers: [
                Self.tusResumable: Self.version, Self.tusVersion: Self.version, Self.tusExtension: Self.extensions,
                Self.tusMaxSize: "\(self.maximumSize)", Self.tusChecksumAlgorithm: "sha1",
            ]
        )
    }

    /// Creation (and creation-with-upload when the request has a body).
    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try JobsController.tenant(context)
        try Self.checkResumable(request)
        if request.headers[Self.uploadDeferLength] != nil {
            throw Self.problem(
                .badRequest,
                "Length required",
                "send Upload-Length: uploads of unknown length are not taken"
            )
        }
        guard let text = request.headers[Self.uploadLength], let length = Int64(text), length >= 0 else {
            throw Self.problem(.badRequest, "Length required", "send Upload-Length: the file's size in bytes")
        }
        guard length <= self.maximumSize else {
            throw Self.problem(
                .contentTooLarge,
                "Upload too large",
                "the upload is \(length) bytes, over this farm's limit of \(self.maximumSize) bytes per upload; ask "
                    + "its operator (--max-upload-size)"
            )
        }
        let metadata = request.headers[Self.uploadMetadata] ?? ""
        let settings = try UploadMetadata(parsing: metadata).settings
        // Checked now, not when the last byte arrives: a job that could never be made is refused before the upload.
        if let settings { _ = try JobRequest.fromUploadSettings(settings, upload: "check").settings() }
        let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let path = (self.folder as NSString).appendingPathComponent(id)
        let hasPiece = request.headers[.contentType] == Self.offsetStream
        try await UploadFile.create(at: path)
        let upload = Upload(
            id: id,
            tenant: tenant,
            length: length,
            received: 0,
            metadata: metadata,
            path: path,
            expiresAt: Date().addingTimeInterval(self.lifetime),
            jobID: nil,
            apiKeyID: context.keyID
        )
        // A piece's headers are checked before the upload exists: refused then, it leaves nothing behind.
        if hasPiece { _ = try Self.checkPiece(request, of: upload) }
        do {
            try await self.store.createUpload(upload, quota: self.jobs.quota(context))
        } catch {
            await UploadFile.remove(at: path)
            throw error
        }
        var headers = Self.headers(upload)
        headers[.location] = "/v1/uploads/\(id)"
        if hasPiece {
            do {
                let (stored, job) = try await self.write(request, to: upload, at: 0)
                headers[Self.uploadOffset] = "\(stored.received)"
                if let job { headers[Self.farmJob] = "/v1/jobs/\(job)" }
            } catch var problem as Problem {
                // The upload exists though its first piece was refused: the client carries on from HEAD.
                problem.headers[.location] = "/v1/uploads/\(id)"
                throw problem
            }
        }
        return Response(status: .created, headers: headers)
    }

    @Sendable func head(_ request: Request, context: APIRequestContext) async throws -> Response {
        let upload = try await self.upload(request, context)
        var headers = Self.headers(upload)
        if let job = try await self.job(for: upload) { headers[Self.farmJob] = "/v1/jobs/\(job)" }
        headers[Self.uploadOffset] = "\(upload.received)"
        headers[Self.uploadLength] = "\(upload.length)"
        if !upload.metadata.isEmpty { headers[Self.uploadMetadata] = upload.metadata }
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers)
    }

    @Sendable func patch(_ request: Request, context: APIRequestContext) async throws -> Response {
        let upload = try await self.upload(request, context)
        guard request.headers[.contentType] == Self.offsetStream else {
            throw Self.problem(
                .unsupportedMediaType,
                "Wrong content type",
                "send the bytes as Content-Type: \(Self.offsetStream)"
            )
        }
        guard let text = request.headers[Self.uploadOffset], let offset = Int64(text) else {
            throw Self.problem(.badRequest, "Offset required", "send Upload-Offset: where these bytes start")
        }
        guard offset == upload.received else { throw Self.wrongOffset(offset, upload) }
        let (stored, job) = try await self.write(request, to: upload, at: offset)
        var headers = Self.headers(stored)
        headers[Self.uploadOffset] = "\(stored.received)"
        if let job { headers[Self.farmJob] = "/v1/jobs/\(job)" }
        return Response(status: .noContent, headers: headers)
    }

    /// Termination: the upload and its file go, unless a job reads it.
    @Sendable func terminate(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try JobsController.tenant(context)
        try Self.checkResumable(request)
        let id = try Self.uploadID(context)
        switch try await self.store.deleteUpload(id, tenant: tenant) {
        case .deleted(let path):
            if let path { await UploadFile.remove(at: path) }
            return Response(status: .noContent, headers: [Self.tusResumable: Self.version])
        case .inUse(let job):
            throw Self.problem(
                .conflict,
                "Upload in use",
                "job \(job) reads this upload; it is removed once the job has ended and the upload expired"
            )
        case .missing:
            throw Self.notFound(id)
        }
    }

    /// Writes the request's body as the upload's next piece, from `offset` (the client's `Upload-Offset`), counts
    /// what was stored, and makes the job its `farm-settings` ask for once the last byte is in.
    private func write(_ request: Request, to found: Upload, at offset: Int64) async throws -> (Upload, job: Int64?) {
        let expected = try Self.checkPiece(request, of: found)
        return try await self.store.withUploadLock(found.id) { locked in
            guard locked else {
                throw Self.problem(
                    Self.locked,
                    "Upload busy",
                    "another PATCH of this upload is still being received; wait for it to end, then HEAD and carry on"
                )
            }
            // Read again under the lock: the offset the request was checked against may have moved meanwhile.
            guard let upload = try await self.store.upload(found.id, tenant: found.tenant) else {
                throw Self.notFound(found.id)
            }
            guard upload.received == offset else { throw Self.wrongOffset(offset, upload) }
            return try await self.writeLocked(request, to: upload, expected: expected)
        }
    }

    private func writeLocked(
        _ request: Request,
        to upload: Upload,
        expected: Data?
    ) async throws -> (Upload, job: Int64?) {
        let appended = try await UploadFile.append(
            request.body,
            to: upload.path,
            at: upload.received,
            room: upload.length - upload.received
        )
        let (interrupted, overflowed, sha1, written) =
            (appended.interruption != nil, appended.overflowed, appended.sha1, appended.written)
        // Counted in a task of its own: a client gone midway may cancel the request's task, and the bytes it had
        // sent must still count.
        let outcome = try await Task { () throws -> PieceOutcome in
            if let expected, interrupted || overflowed || sha1 != expected {
                try await UploadFile.cut(upload.path, to: upload.received)
                return .refused
            }
            var stored = upload
            stored.received += written
            guard try await self.store.advanceUpload(upload.id, from: upload.received, to: stored.received) else {
                return .moved
            }
            // The job, as soon as the last byte counts: a client that goes away now finds the upload complete and
            // sends nothing more.
            return .stored(stored, job: try await self.job(for: stored))
        }.value
        if let interruption = appended.interruption { throw interruption }
        switch outcome {
        case .stored(let stored, let job):
            if overflowed {
                throw Self.problem(
                    .contentTooLarge,
                    "Piece too large",
                    "the piece holds more bytes than the upload has left; \(stored.received) of \(stored.length) are "
                        + "stored"
                )
            }
            return (stored, job)
        case .moved:
            throw Self.problem(
                .conflict,
                "Upload moved",
                "another request stored bytes of this upload meanwhile; HEAD it and carry on from its offset"
            )
        case .refused where overflowed:
            throw Self.problem(
                .contentTooLarge,
                "Piece too large",
                "the piece holds more bytes than the upload has left; nothing of it was kept"
            )
        case .refused:
            throw Self.problem(
                Self.checksumMismatch,
                "Checksum mismatch",
                "the piece's SHA-1 is not the Upload-Checksum sent; nothing of it was kept: send it again"
            )
        }
    }

    /// The job of a complete upload whose metadata asks for one (`farm-settings`), made once: the same
    /// idempotency key every time, so a HEAD after a crash between the last byte and the job makes it then.
    private func job(for upload: Upload) async throws -> Int64? {
        if let job = upload.jobID { return job }
        guard upload.isComplete, let settings = try UploadMetadata(parsing: upload.metadata).settings else {
            return nil
        }
        do {
            return try await self.jobs.submit(
                JobRequest.fromUploadSettings(settings, upload: upload.id),
                tenant: upload.tenant,
                quota: self.jobs.quota(keyID: upload.apiKeyID),
                idempotency: IdempotencyKey(key: "tus-upload-\(upload.id)", requestHash: Data(upload.id.utf8))
            ).id
        } catch let quota as QuotaReached {
            // The upload keeps its bytes; its job is made by the next HEAD once the key has room, or at once by
            // `POST /v1/jobs {"upload": id}`, whose 429 says why when it has none.
            self.store.logger.notice(
                "upload complete, its job waits for room under the key's cap",
                metadata: ["upload": "\(upload.id)", "cap": "\(quota.limit)"]
            )
            return nil
        }
    }

    /// The piece's `Upload-Checksum`, if any, once its headers are checked: before any byte is written.
    static func checkPiece(_ request: Request, of upload: Upload) throws -> Data? {
        let expected = try Self.expectedChecksum(request)
        if let length = request.headers[.contentLength].flatMap({ Int64($0) }), length > upload.length - upload.received
        {
            throw Self.problem(
                .contentTooLarge,
                "Piece too large",
                "the piece is \(length) bytes and the upload has \(upload.length - upload.received) left; send at most "
                    + "that"
            )
        }
        return expected
    }

    static func wrongOffset(_ offset: Int64, _ upload: Upload) -> Problem {
        Self.problem(
            .conflict,
            "Wrong offset",
            "the upload has \(upload.received) bytes stored, not \(offset); send the bytes from \(upload.received) "
                + "(HEAD tells where to carry on)"
        )
    }

    private func upload(_ request: Request, _ context: APIRequestContext) async throws -> Upload {
        let tenant = try JobsController.tenant(context)
        try Self.checkResumable(request)
        let id = try Self.uploadID(context)
        guard let upload = try await self.store.upload(id, tenant: tenant) else { throw Self.notFound(id) }
        return upload
    }

    /// The route's upload id: 32 lowercase hex digits, as `create` makes them; anything else is no upload.
    static func uploadID(_ context: APIRequestContext) throws -> String {
        let id = context.parameters.get("id") ?? ""
        guard id.utf8.count == 32, id.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { throw Self.notFound(id) }
        return id
    }

    private enum PieceOutcome {
        case stored(Upload, job: Int64?)
        /// Another request moved the offset first (two coordinators taking pieces of one upload at once).
        case moved
        /// Its checksum did not match (or could not be checked: it was cut off); nothing of it is kept.
        case refused
    }

    static let checksumMismatch = HTTPResponse.Status(code: 460, reasonPhrase: "Checksum Mismatch")
    static let locked = HTTPResponse.Status(code: 423, reasonPhrase: "Locked")

    static func expectedChecksum(_ request: Request) throws -> Data? {
        guard let header = request.headers[Self.uploadChecksum] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha1" else {
            throw Self.problem(
                .badRequest,
                "Unsupported checksum",
                "send Upload-Checksum as `sha1 <base64 of the SHA-1>`"
            )
        }
        guard let digest = Data(base64Encoded: String(parts[1])), digest.count == 20 else {
            throw Self.problem(.badRequest, "Bad checksum", "the Upload-Checksum value is not the base64 of a SHA-1")
        }
        return digest
    }

    static func checkResumable(_ request: Request) throws {
        guard request.headers[Self.tusResumable] == Self.version else {
            throw Problem(
                .preconditionFailed,
                "tus version not supported",
                detail: "send Tus-Resumable: \(Self.version) (this server speaks tus \(Self.version))",
                headers: [Self.tusResumable: Self.version, Self.tusVersion: Self.version]
            )
        }
    }

    static func headers(_ upload: Upload) -> HTTPFields {
        [Self.tusResumable: Self.version, Self.uploadExpires: Self.httpDate(upload.expiresAt)]
    }

    /// A problem that carries `Tus-Resumable`, as every tus response must.
    static func problem(_ status: HTTPResponse.Status, _ title: String, _ detail: String) -> Problem {
        Problem(status, title, detail: detail, headers: [Self.tusResumable: Self.version])
    }

    static func notFound(_ id: String) -> Problem {
        Self.problem(
            .notFound,
            "Not found",
            "upload \(id) does not exist for this API key (it may have expired or been terminated); create a new one"
        )
    }

    /// RFC 9110's IMF-fixdate, as `Upload-Expires` takes it.
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

/// `Upload-Metadata`: comma-separated pairs of a key and its value in base64 (tus 1.0, creation). The farm reads
/// `farm-settings`, a job's settings as JSON (JobRequest without `source` or `upload`); the rest is the client's.
struct UploadMetadata {
    var pairs: [String: Data] = [:]

    init(parsing header: String) throws {
        guard header.utf8.count <= 4096 else {
            throw UploadsController.problem(.badRequest, "Metadata too large", "keep Upload-Metadata under 4 KiB")
        }
        for pair in header.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            guard (1...2).contains(parts.count), let key = parts.first,
                key.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
            else {
                throw UploadsController.problem(
                    .badRequest,
                    "Bad metadata",
                    "Upload-Metadata is `key base64value` pairs separated by commas; \(pair) is not one"
                )
            }
            let value = parts.count == 2 ? Data(base64Encoded: String(parts[1])) : Data()
            guard let value else {
                throw UploadsController.problem(
                    .badRequest,
                    "Bad metadata",
                    "the Upload-Metadata value of \(key) is not base64"
                )
            }
            self.pairs[String(key)] = value
        }
    }

    var settings: Data? { self.pairs["farm-settings"] }
}

/// Sets `Tus-Resumable` on every answer of the upload routes, problems included (an API key's 401 too), as tus 1.0
/// asks of every response but OPTIONS'.
struct TusResumableMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            var response = try await next(request, context)
            response.headers[UploadsController.tusResumable] = UploadsController.version
            return response
        } catch var problem as Problem {
            problem.headers[UploadsController.tusResumable] = UploadsController.version
            throw problem
        }
    }
}
