import Foundation

/// docs/openapi.yaml, the API's contract, as the JSON `/openapi.json` serves (`OpenAPIDocument+JSON.swift`, written
/// from it by deploy/openapi-embed.sh; `APIDocumentTests` fails when they differ, or when a route of the router is
/// not in it or an operation of it has no route).
package enum OpenAPIDocument {
    /// The document's bytes, checked to be a JSON object once, at start-up.
    package static func json() throws -> Data {
        let data = Data(self.text.utf8)
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw OpenAPIDocumentError()
        }
        return data
    }

    /// Every operation of the document: `GET /v1/jobs/{id}` and so on.
    package static func operations() throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: try self.json()) as? [String: Any]
        let paths = object?["paths"] as? [String: [String: Any]] ?? [:]
        return Set(
            paths.flatMap { path, operations in
                operations.keys.filter { ["get", "put", "post", "delete", "patch", "head", "options"].contains($0) }
                    .map { "\($0.uppercased()) \(path)" }
            }
        )
    }
}

struct OpenAPIDocumentError: Error, CustomStringConvertible {
    var description: String {
        "the embedded OpenAPI document is not a JSON object; run deploy/openapi-embed.sh and rebuild"
    }
}
