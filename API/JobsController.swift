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

    /// Adds the routes under `group` (at `/v1/jobs`) and returns their operations, as docs/openapi.yaml names them.
    package func addRoutes(to group: RouterGroup<APIRequestContext>) -> [String] {
        group.post(use: self.create)
        group.get(use: self.list)
        group.get("{id}", use: self.show)
        group.post("{id}/cancel", use: self.cancel)
        return ["POST /v1/jobs", "GET /v1/jobs", "GET /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel"]
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let tenant = try Self.tenant(context)
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        let job = try JobRequest.decode(Data(buffer: body))
        let settings = try job.settings()
        let source: String
        switch self.sources.source(job.source.path) {
        case .success(let path): source = path
        case .failure(let error): throw Problem(.unprocessableContent, "Source refused", detail: error.description)
        }
        let output = (self.outputRoot as NSString).appendingPathComponent(UUID().uuidString.lowercased())
        let id = try await self.store.submit(
            source: source,
            outputDirectory: output,
            settings: settings,
            priority: job.priority ?? 0,
            tenant: tenant
        )
        guard let created = try await self.store.job(id, tenant: tenant) else { throw Problem.notFound("job \(id)") }
        return try Self.json(JobResource(created), status: .created, headers: [.location: "/v1/jobs/\(id)"])
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
