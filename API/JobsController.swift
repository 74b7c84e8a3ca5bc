import FarmCoordinator
import Foundation
import Hummingbird

/// `/v1/jobs`: submit, follow, list and cancel a tenant's jobs. A job of another tenant is a 404, never a 403: the
/// answer does not confirm that it exists.
package struct JobsController: Sendable {
    let store: JobStore
    let sources: SourceFolders
    /// Where API jobs' outputs go: one new folder per job.
    let outputRoot: String
    /// Where sources fetched from URLs go (the upload folder): one new file per job.
    let fetchFolder: String
    /// Which URLs a client may give as a source or a webhook.
    let outbound: OutboundURLPolicy
    /// The caps of a key that has none of its own.
    let keyLimits: APIKeyLimits

    /// Adds the routes under `group` (at `/v1/jobs`) and returns their operations, as docs/openapi.yaml names them.
    package func addRoutes(to group: RouterGroup<APIRequestContext>) -> [String] {
        group.post(use: self.create)
        group.get(use: self.list)
        group.get("{id}", use: self.show)
        group.post("{id}/cancel", use: self.cancel)
        group.post("{id}/retry", use: self.retry)
        return [
            "POST /v1/jobs", "GET /v1/jobs", "GET /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel",
            "POST /v1/jobs/{id}/retry",
        ]
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let body = Data(buffer: try await request.body.collect(upTo: context.maxUploadSize))
        let job = try JobRequest.decode(body)
        let submitted = try await Self.idempotent(request) { idempotency in
            try await self.submit(
                job,
                tenant: tenant,
                quota: self.quota(context),
                idempotency: idempotency.map { IdempotencyKey(key: $0, requestHash: JobRequest.hash(of: body)) }
            )
        }
        return try await self.created(submitted, tenant: tenant)
    }

    /// Submits `job` for `tenant`, from a path inside the source folders or from the tenant's finished upload,
    /// counted against `quota`'s key.
    package func submit(
        _ job: JobRequest,
        tenant: String,
        quota: APIKeyQuota?,
        idempotency: IdempotencyKey?
    ) async throws -> (id: Int64, replayed: Bool) {
        let settings = try job.settings()
        var details = try await self.details(of: job)
        details.quota = quota
        let source: String
        var upload: Upload?
        switch (job.source, job.upload) {
        case (let given?, nil):
            if let path = given.path {
                switch self.sources.source(path) {
                case .success(let path): source = path
                case .failure(let error):
                    throw Problem(.unprocessableContent, "Source refused", detail: error.description)
                }
            } else {
                do {
                    details.sourceURL = try await self.outbound.check(given.url ?? "", purpose: "source").absoluteString
                } catch let error as OutboundURLRefused {
                    throw Problem(.unprocessableContent, "Source URL refused", detail: error.description)
                }
                source = self.newFetchPath()
            }
        case (nil, let id?):
            guard let found = try await self.store.upload(id, tenant: tenant) else {
                throw Problem(
                    .unprocessableContent,
                    "Upload not found",
                    detail: "upload \(id) does not exist for this API key (it may have expired); upload the file again"
                )
            }
            guard found.isComplete else {
                throw Problem(
                    .conflict,
                    "Upload not finished",
                    detail: "upload \(id) has \(found.received) of \(found.length) bytes; send the rest (PATCH) first"
                )
            }
            source = found.path
            upload = found
        default:
            throw Problem.badRequest(
                "give the video as exactly one of source ({\"path\": \"…\"} or {\"url\": \"https://…\"}) and upload (the id "
                    + "of a finished upload)"
            )
        }
        let submitted = try await self.store.submit(
            source: source,
            outputDirectory: self.newOutputFolder(),
            settings: settings,
            priority: job.priority ?? 0,
            tenant: tenant,
            idempotency: idempotency,
            retryOf: nil,
            details: details
        )
        if let upload { try await self.store.attachUpload(upload.id, jobID: submitted.id) }
        return submitted
    }

    /// The request's webhook (its URL checked as a source URL is) and metadata, as the store keeps them.
    private func details(of job: JobRequest) async throws -> APIJobDetails {
        var details = APIJobDetails()
        if let webhook = job.webhook {
            do {
                details.webhookURL = try await self.outbound.check(webhook.url, purpose: "webhook").absoluteString
            } catch let error as OutboundURLRefused {
                throw Problem(.unprocessableContent, "Webhook URL refused", detail: error.description)
            }
            guard (16...256).contains(webhook.secret.utf8.count) else {
                throw Problem(
                    .unprocessableContent,
                    "Webhook secret refused",
                    detail: "webhook.secret must be 16 to 256 bytes; use 32 random bytes in hex or base64"
                )
            }
            details.webhookSecret = webhook.secret
        }
        if let metadata = job.metadata {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            details.metadata = String(decoding: try encoder.encode(metadata), as: UTF8.self)
        }
        return details
    }

    /// A failed or cancelled job submitted again, as a new job (`retryOf` names the first) with a new output folder.
    @Sendable func retry(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let id = try Self.jobID(context)
        let submitted = try await Self.idempotent(request) { idempotency in
            do {
                return try await self.store.retry(
                    jobID: id,
                    tenant: tenant,
                    outputDirectory: self.newOutputFolder(),
                    fetchPath: self.newFetchPath(),
                    idempotency: idempotency.map {
                        IdempotencyKey(key: $0, requestHash: JobRequest.hash(of: Data("retry \(id)".utf8)))
                    },
                    quota: self.quota(context)
                )
            } catch let error as JobNotRetryable {
                throw Problem(.conflict, "Job cannot be retried", detail: error.description)
            }
        }
        guard let submitted else { throw Problem.notFound("job \(id)") }
        return try await self.created(submitted, tenant: tenant)
    }

    /// What the request's key's jobs and uploads count against.
    func quota(_ context: APIRequestContext) -> APIKeyQuota? {
        self.quota(keyID: context.keyID)
    }

    func quota(keyID: Int64?) -> APIKeyQuota? {
        keyID.map { APIKeyQuota(keyID: $0, defaults: self.keyLimits) }
    }

    private func newOutputFolder() -> String {
        (self.outputRoot as NSString).appendingPathComponent(UUID().uuidString.lowercased())
    }

    private func newFetchPath() -> String {
        (self.fetchFolder as NSString).appendingPathComponent("fetched-" + UUID().uuidString.lowercased())
    }

    /// 201 with the job, for a new job and for a request replayed with its `Idempotency-Key` alike (the latter
    /// marked `Idempotent-Replayed: true`), so a client that retries gets the answer it missed.
    private func created(_ submitted: (id: Int64, replayed: Bool), tenant: String) async throws -> Response {
        guard let job = try await self.store.job(submitted.id, tenant: tenant) else {
            throw Problem.notFound("job \(submitted.id)")
        }
        var headers: HTTPFields = [.location: "/v1/jobs/\(submitted.id)"]
        if submitted.replayed { headers[Self.idempotentReplayed] = "true" }
        return try Self.json(JobResource(job), status: .created, headers: headers)
    }

    static let idempotencyKey = HTTPFields.Element.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPFields.Element.Name("Idempotent-Replayed")!

    /// Runs `submit` with the request's `Idempotency-Key` (1 to 255 visible ASCII characters), if it has one, and
    /// turns a key reused for another request into a 409.
    static func idempotent<Result>(
        _ request: Request,
        _ submit: (String?) async throws -> Result
    ) async throws -> Result {
        let key = request.headers[Self.idempotencyKey]
        if let key {
            guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw Problem.badRequest(
                    "the Idempotency-Key header must be 1 to 255 visible ASCII characters (a UUID is a good one)"
                )
            }
        }
        do {
            return try await submit(key)
        } catch let error as IdempotencyKeyReused {
            throw Problem(.conflict, "Idempotency key reused", detail: error.description)
        }
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let id = try Self.jobID(context)
        guard let job = try await self.store.job(id, tenant: tenant) else { throw Problem.notFound("job \(id)") }
        return try Self.json(JobResource(job))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let query = request.uri.queryParameters
        let limit =
            try query["limit"].map { text -> Int in
                guard let limit = Int(String(text)), (1...100).contains(limit) else {
                    throw Problem.badRequest("limit \(text) is out of range: use 1 to 100")
                }
                return limit
            } ?? 20
        let state = try query["state"].map { text -> JobState in
            guard let state = JobState(rawValue: String(text)) else {
                throw Problem.badRequest(
                    "state \(text) is unknown; use one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            return state
        }
        let before = try query["cursor"].map { text -> Int64 in
            guard let cursor = Int64(String(text)), cursor > 0 else {
                throw Problem.badRequest("cursor \(text) is not one this API gave; pass nextCursor as it came")
            }
            return cursor
        }
        // One more than asked: whether there is a next page, without a count.
        let jobs = try await self.store.jobs(tenant: tenant, state: state, before: before, limit: limit + 1)
        let page = JobPage(
            jobs: jobs.prefix(limit).map(JobResource.init),
            nextCursor: jobs.count > limit ? jobs[limit - 1].id.description : nil
        )
        return try Self.json(page)
    }

    @Sendable func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let id = try Self.jobID(context)
        guard let cancelled = try await self.store.cancel(jobID: id, tenant: tenant) else {
            throw Problem.notFound("job \(id)")
        }
        guard let job = try await self.store.job(id, tenant: tenant) else { throw Problem.notFound("job \(id)") }
        guard cancelled || job.state == .cancelled else {
            throw Problem(
                .conflict,
                "Job already ended",
                detail: "job \(id) is \(job.state.rawValue) and cannot be cancelled; retry it to run it again"
            )
        }
        return try Self.json(JobResource(job))
    }

    static func tenant(_ context: APIRequestContext) throws -> String {
        guard let tenant = context.tenant else {
            throw Problem(.unauthorized, "API key missing", detail: "send an API key as `Authorization: Bearer farm_…`")
        }
        return tenant
    }

    static func jobID(_ context: APIRequestContext) throws -> Int64 {
        guard let text = context.parameters.get("id"), let id = Int64(text), id > 0 else {
            throw Problem.notFound("job \(context.parameters.get("id") ?? "")")
        }
        return id
    }

    /// A JSON response (the API's one encoding: keys sorted, so the bytes of the same answer are the same).
    static func json(
        _ value: some Encodable,
        status: HTTPResponse.Status = .ok,
        headers: HTTPFields = [:]
    ) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(
            status: status,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(data: try encoder.encode(value)))
        )
    }
}
