import FarmAPI
import FarmTestSupport
import Foundation
import PostgresNIO
import Testing

/// The code and docs/openapi.yaml cannot drift: the document served is the checked-in one, and the router has a
/// route for each of its operations and no other.
@Suite("The OpenAPI document")
struct APIDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test(
        .enabled(
            if: ProcessInfo.processInfo.environment["FARM_TEST_PYTHON"] != nil
                || ProcessInfo.processInfo.environment["CI"] != nil,
            "needs FARM_TEST_PYTHON (a python with PyYAML: deploy/python-env.sh)"
        )
    )
    func theServedDocumentIsTheCheckedInOne() throws {
        let python = try #require(ProcessInfo.processInfo.environment["FARM_TEST_PYTHON"])
        let yaml = Self.root.appendingPathComponent("docs/openapi.yaml").path
        let converted = try run(
            python,
            ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", yaml]
        )
        let fromYAML = try JSONSerialization.jsonObject(with: Data(converted.utf8)) as? NSDictionary
        let served = try JSONSerialization.jsonObject(with: try OpenAPIDocument.json()) as? NSDictionary
        #expect(fromYAML != nil && fromYAML == served, "docs/openapi.yaml changed: run deploy/openapi-embed.sh")
        let version = served?["openapi"] as? String
        #expect(version == "3.1.0")
    }

    @Test func everyOperationHasARouteAndEveryRouteAnOperation() throws {
        // Building the routes queries nothing: a client that is never run is enough.
        let client = PostgresClient(
            configuration: .init(
                host: "127.0.0.1",
                port: 1,
                username: "nobody",
                password: nil,
                database: nil,
                tls: .disable
            ),
            backgroundLogger: testLogger
        )
        let routes = try APIApplication.router(
            client: client,
            configuration: APIConfiguration(outputRoot: "/nonexistent"),
            logger: testLogger
        )
        #expect(routes.operations == (try OpenAPIDocument.operations()))
    }
}
