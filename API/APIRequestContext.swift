import Hummingbird

/// A request to the API, and the tenant its key belongs to once `APIKeyAuthenticator` has checked it.
package struct APIRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    package var tenant: String?
    /// The id of the request's key, which its jobs and uploads count against.
    package var keyID: Int64?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.tenant = nil
        self.keyID = nil
    }

    /// JSON bodies are small; video arrives by upload or URL, never in a JSON body.
    package var maxUploadSize: Int { 64 * 1024 }
}

/// Lets a request through only with a live API key (`Authorization: Bearer farm_…`), and sets its tenant.
package struct APIKeyAuthenticator: RouterMiddleware {
    package typealias Context = APIRequestContext
    let keys: APIKeyStore

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let unauthorized: HTTPFields = [.wwwAuthenticate: "Bearer realm=\"farm\""]
        guard let key = APIKey.fromAuthorization(request.headers[.authorization]) else {
            throw Problem(
                .unauthorized,
                "API key missing",
                detail: "send an API key as `Authorization: Bearer farm_…`; an operator makes one with "
                    + "`farm keys create --tenant NAME`",
                headers: unauthorized
            )
        }
        guard let owner = try await self.keys.owner(of: key) else {
            throw Problem(
                .unauthorized,
                "API key refused",
                detail: "this API key is unknown or revoked; ask the farm's operator for a new one",
                headers: unauthorized
            )
        }
        var context = context
        context.tenant = owner.tenant
        context.keyID = owner.id
        return try await next(request, context)
    }
}
