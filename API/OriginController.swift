import FarmCoordinator
import Foundation
import Hummingbird

/// The HLS origin (docs/api.md, "Play"): `GET /v1/jobs/{id}/playback` signs a URL for a tenant's ready job, and
/// `/v1/jobs/{id}/hls/{token}/…` serves that job's output folder to whoever holds the URL, without an API key.
package struct OriginController: Sendable {
    let store: JobStore
    let signer: PlaybackSigner
    let fileIO = FileIO()

    static let defaultLifetime: Int64 = 6 * 3600
    static let lifetimes: ClosedRange<Int64> = 60...(7 * 24 * 3600)
    static let eTag = HTTPFields.Element.Name("ETag")!
    static let ifNoneMatch = HTTPFields.Element.Name("If-None-Match")!
    static let ifRange = HTTPFields.Element.Name("If-Range")!

    /// Adds `/playback` under `keyed` (behind the API key) and the files under `signed` (behind the URL's signature
    /// alone), both at `/v1/jobs`, and returns their operations, as docs/openapi.yaml names them.
    package func addRoutes(keyed: RouterGroup<APIRequestContext>, signed: RouterGroup<APIRequestContext>) -> [String] {
        keyed.get("{id}/playback", use: self.playback)
        signed.get("{id}/hls/**", use: self.file)
        signed.head("{id}/hls/**", use: self.file)
        return [
            "GET /v1/jobs/{id}/playback", "GET /v1/jobs/{id}/hls/{token}/{path}",
            "HEAD /v1/jobs/{id}/hls/{token}/{path}",
        ]
    }

    struct Playback: Encodable {
        /// Relative to the API's address: `/v1/jobs/{id}/hls/{token}/master.m3u8`.
        var url: String
        var expiresAt: String
    }

    @Sendable func playback(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try JobsController.tenant(context)
        let id = try JobsController.jobID(context)
        let lifetime = try request.uri.queryParameters["expires"].map { text -> Int64 in
            guard let seconds = Int64(String(text)), Self.lifetimes.contains(seconds) else {
                throw Problem.badRequest(
                    "expires \(text) is out of range: give the URL's lifetime in seconds, \(Self.lifetimes.lowerBound) "
                        + "to \(Self.lifetimes.upperBound)"
                )
            }
            return seconds
        }
        guard let job = try await self.store.job(id, tenant: tenant) else { throw Problem.notFound("job \(id)") }
        guard job.state == .ready else {
            throw Problem(
                .conflict,
                "Job not ready",
                detail: "job \(id) is \(job.state.rawValue): it can be played once it is ready; "
                    + (job.state.isEnded
                        ? "retry it to run it again" : "wait for it (GET /v1/jobs/\(id)) and ask again")
            )
        }
        let expires = Int64(Date().timeIntervalSince1970) + (lifetime ?? Self.defaultLifetime)
        let formatter = ISO8601DateFormatter()
        let token = self.signer.token(jobID: id, expires: expires)
        return try JobsController.json(
            Playback(
                url: "/v1/jobs/\(id)/hls/\(token)/master.m3u8",
                expiresAt: formatter.string(from: Date(timeIntervalSince1970: Double(expires)))
            ),
            headers: [.cacheControl: "no-store"]
        )
    }

    /// A file of a ready job's output folder, for a valid token: ranges, ETag and caching as docs/api.md says.
    @Sendable func file(_ request: Request, context: APIRequestContext) async throws -> Response {
        // The raw path, still percent-encoded and with its empty components, is the one parsed: nothing is decoded,
        // so nothing decodes into a separator or a `..`.
        let parts = request.uri.path.split(separator: "/", maxSplits: 6, omittingEmptySubsequences: false)
        guard parts.count >= 6, parts[0].isEmpty, parts[1] == "v1", parts[2] == "jobs", parts[4] == "hls",
            let id = Int64(parts[3]), id > 0
        else { throw Problem.notFound("that playback path") }
        switch self.signer.check(parts[5], jobID: id, now: Date()) {
        case .valid: break
        case .unsigned: throw Self.forbidden("the URL has no playback signature")
        case .otherKey:
            throw Self.forbidden(
                "the URL was signed with another key (a coordinator without this farm's cluster secret, or one "
                    + "restarted since)"
            )
        case .badSignature: throw Self.forbidden("the URL's signature does not match it (altered, or another job's)")
        case .expired: throw Self.forbidden("the URL has expired")
        }
        guard parts.count == 7, let path = OriginPath(raw: parts[6]) else {
            throw Problem.badRequest(
                "a playback path is one or two names of letters, digits, '_' and '-' (a folder, then a file with "
                    + "one of the extensions \(OriginFileKind.allCases.map(\.rawValue).joined(separator: ", "))), "
                    + "as the playlists name them"
            )
        }
        guard let folder = try await self.store.readyOutputFolder(jobID: id),
            let file = OriginFile(path.file(in: folder), inside: folder)
        else { throw Problem.notFound("\(parts[6]) of job \(id)") }
        return try await self.respond(request, file: file, kind: path.kind, context: context)
    }

    private func respond(
        _ request: Request,
        file: OriginFile,
        kind: OriginFileKind,
        context: APIRequestContext
    ) async throws -> Response {
        var headers: HTTPFields = [
            .contentType: kind.contentType, .cacheControl: kind.cacheControl, .acceptRanges: "bytes",
            Self.eTag: file.eTag,
        ]
        if let tags = request.headers[Self.ifNoneMatch], Self.matches(tags, file.eTag) {
            return Response(status: .notModified, headers: headers)
        }
        // An If-Range for another version asks for the whole file (these never change, so it is a stale client's).
        let rangeHeader = request.headers[Self.ifRange].map { $0 == file.eTag } ?? true ? request.headers[.range] : nil
        let status: HTTPResponse.Status
        let range: ClosedRange<Int64>?
        switch ByteRangeRequest(header: rangeHeader, size: file.size) {
        case .whole:
            (status, range) = (.ok, file.size > 0 ? 0...(file.size - 1) : nil)
        case .part(let part):
            (status, range) = (.partialContent, part)
            headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(file.size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(file.size)"
            throw Problem(
                .rangeNotSatisfiable,
                "Range not satisfiable",
                detail: "the file is \(file.size) bytes; ask for a range inside it",
                headers: headers
            )
        }
        headers[.contentLength] = "\(range.map { $0.count } ?? 0)"
        guard request.method == .get, let range else { return Response(status: status, headers: headers) }
        // Streamed from the file in chunks: a segment is never held in memory whole.
        let body = try await self.fileIO.loadFile(
            path: file.path,
            range: Int(range.lowerBound)...Int(range.upperBound),
            context: context
        )
        return Response(status: status, headers: headers, body: body)
    }

    /// Whether an If-None-Match list names `eTag` (weakly compared, as RFC 9110 says for it) or is `*`.
    static func matches(_ list: String, _ eTag: String) -> Bool {
        list.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == eTag || tag == "W/" + eTag
        }
    }

    static func forbidden(_ why: String) -> Problem {
        Problem(
            .forbidden,
            "Playback URL refused",
            detail: "\(why); ask GET /v1/jobs/{id}/playback (with your API key) for a new URL"
        )
    }
}

/// A regular file that really is inside a job's output folder, symbolic links resolved, with what identifies its
/// version.
struct OriginFile {
    let path: String
    let size: Int64
    /// Strong: the file's inode, size and modification time; a ready job's files never change in place.
    let eTag: String

    init?(_ candidate: String, inside folder: String) {
        guard let resolved = Self.realPath(candidate), let root = Self.realPath(folder),
            resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/")
        else { return nil }
        var info = stat()
        guard stat(resolved, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        self.path = resolved
        self.size = Int64(info.st_size)
        let modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        self.eTag =
            "\"\(String(info.st_ino, radix: 16))-\(String(self.size, radix: 16))-\(String(modified, radix: 16))\""
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
