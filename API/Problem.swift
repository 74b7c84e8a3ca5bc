import FarmCoordinator
import Foundation
import Hummingbird

/// An error answered as RFC 9457 `application/problem+json`: what went wrong (`title`), and what to do (`detail`).
package struct Problem: HTTPResponseError, Sendable {
    package var status: HTTPResponse.Status
    package var title: String
    package var detail: String
    package var headers: HTTPFields = [:]

    package init(_ status: HTTPResponse.Status, _ title: String, detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
    }

    struct Body: Codable {
        var type = "about:blank"
        var title: String
        var status: Int
        var detail: String
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder().encode(Body(title: self.title, status: self.status.code, detail: self.detail))
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    package static func notFound(_ what: String) -> Problem {
        Problem(.notFound, "Not found", detail: "\(what) does not exist for this API key; check the id")
    }

    package static func badRequest(_ detail: String) -> Problem {
        Problem(.badRequest, "Bad request", detail: detail)
    }
}

/// Turns every error on its way out into a problem document: Hummingbird's own (no such route, a body too large, a
/// body that is not JSON) keep their status, anything else is a 500 whose cause goes to the log, not the client.
package struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let quota as QuotaReached {
            // Retry-After is a hint, not a promise: a job in flight takes minutes, an upload as long as its sender.
            throw Problem(
                .tooManyRequests,
                quota.kind == .jobsInFlight ? "Too many jobs in flight" : "Too many open uploads",
                detail: quota.description,
                headers: [.retryAfter: "30"]
            )
        } catch let error as any HTTPResponseError {
            throw Problem(
                error.status,
                error.status.reasonPhrase,
                detail: Self.detail(for: error.status, request: request, context: context)
            )
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw Problem(
                .internalServerError,
                "Internal error",
                detail: "the coordinator could not answer; try again, and if it persists its log has the cause"
            )
        }
    }

    static func detail(for status: HTTPResponse.Status, request: Request, context: Context) -> String {
        switch status {
        case .notFound: "no route \(request.method) \(request.uri.path); the routes are in /openapi.json"
        case .methodNotAllowed: "\(request.uri.path) does not take \(request.method); see /openapi.json"
        case .contentTooLarge:
            "the request body is over \(context.maxUploadSize) bytes; send a smaller one (uploads go through tus)"
        default: "the request was refused (\(status.code)); see /openapi.json for what each route takes"
        }
    }
}
