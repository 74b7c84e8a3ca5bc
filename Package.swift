// swift-tools-version:6.2
import PackageDescription

let farmSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Our own targets only; dependencies keep their warnings as warnings.
    .treatAllWarnings(as: .error),
]

let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
/// What the coordinator and the agent both build on: the protocol over NIO, logs, and services.
let serviceDependencies: [Target.Dependency] = [
    "FarmProtocol", nioCore, logging, serviceLifecycle,
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOFoundationCompat", package: "swift-nio"),
    .product(name: "Crypto", package: "swift-crypto"),
]

extension Target {
    /// One of our own targets: warnings are errors (the settings above).
    static func farmLibrary(_ name: String, path: String, _ dependencies: [Dependency]) -> Target {
        .target(name: name, dependencies: dependencies, path: path, swiftSettings: farmSwiftSettings)
    }

    static func farmExecutable(_ name: String, path: String, _ dependencies: [Dependency]) -> Target {
        .executableTarget(name: name, dependencies: dependencies, path: path, swiftSettings: farmSwiftSettings)
    }

    /// A test target in `Tests/<name>`.
    static func farmTests(_ name: String, _ dependencies: [Dependency]) -> Target {
        .testTarget(name: name, dependencies: dependencies, path: "Tests/\(name)", swiftSettings: farmSwiftSettings)
    }
}

let package = Package(
    name: "farm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "farm", targets: ["farm"]),
        .library(name: "FarmCoordinator", targets: ["FarmCoordinator"]),
        .library(name: "FarmAgent", targets: ["FarmAgent"]),
        .library(name: "FarmAllInOne", targets: ["FarmAllInOne"]),
        .library(name: "FarmFormats", targets: ["FarmFormats"]),
        .library(name: "FarmMedia", targets: ["FarmMedia"]),
        .library(name: "FarmVerify", targets: ["FarmVerify"]),
        .library(name: "FarmProtocol", targets: ["FarmProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Without swift-configuration (its default trait): the coordinator is configured by its flags.
        .package(
            url: "https://github.com/hummingbird-project/hummingbird.git",
            from: "2.28.1",
            traits: ["FullFoundation"]
        ),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CFFmpeg",
            path: "Media/CFFmpeg",
            pkgConfig: "libavformat libavcodec libavfilter libswscale libswresample libavutil",
            providers: [
                .apt([
                    "libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libswscale-dev", "libswresample-dev",
                    "libavutil-dev",
                ])
            ]
        ),
        // The wire: messages, frames, task specs, the cluster secret. No libav, no database.
        .farmLibrary("FarmProtocol", path: "Protocol", [nioCore, .product(name: "Crypto", package: "swift-crypto")]),
        // Pure formats: MP4 boxes, MPEG-TS packets, NAL units, HLS playlists (written and parsed), the chunk planner,
        // the ladder and the thumbnail plan. Nothing here may depend on libav (docs/ARCHITECTURE.md).
        .farmLibrary("FarmFormats", path: "Formats", ["FarmProtocol"]),
        // libav only: probe, extract, encode, audio, thumbnails, remux.
        .farmLibrary("FarmMedia", path: "Media/FarmMedia", ["CFFmpeg", "FarmFormats", "FarmProtocol", logging]),
        // `farm verify`: checks a published ladder from its files alone. Only the CLI and tests depend on it.
        .farmLibrary("FarmVerify", path: "Verify", ["CFFmpeg", "FarmMedia", "FarmFormats", "FarmProtocol"]),
        .farmLibrary(
            "FarmCoordinator",
            path: "Coordinator",
            ["FarmFormats", "FarmMedia", .product(name: "PostgresNIO", package: "postgres-nio")]
                + serviceDependencies
        ),
        // The HTTP API for upload services (Hummingbird): jobs, API keys, the OpenAPI document (docs/openapi.yaml).
        .farmLibrary(
            "FarmAPI",
            path: "API",
            [
                "FarmCoordinator", "FarmProtocol", logging, .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), serviceLifecycle,
            ]
        ),
        .farmLibrary("FarmAgent", path: "Agent", ["FarmFormats", "FarmMedia"] + serviceDependencies),
        // One coordinator and its agents in one process: `farm transcode` and the tests' in-process farm.
        .farmLibrary("FarmAllInOne", path: "AllInOne", ["FarmCoordinator", "FarmAgent", logging, serviceLifecycle]),
        .farmExecutable(
            "farm",
            path: "CLI",
            [
                "FarmAllInOne", "FarmAPI", "FarmCoordinator", "FarmAgent", "FarmFormats", "FarmMedia", "FarmVerify",
                logging, serviceLifecycle,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .farmLibrary(
            "FarmTestSupport",
            path: "Tests/FarmTestSupport",
            [
                "FarmAllInOne", "FarmCoordinator", "FarmAgent", "FarmProtocol", "FarmFormats", "FarmMedia",
                "FarmVerify", logging, .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .farmTests(
            "FarmProtocolTests",
            [
                "FarmProtocol", nioCore,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        // Depends on FarmFormats alone, so it builds and runs without libav (deploy/formats-alone.sh proves it).
        .farmTests("FarmFormatsTests", ["FarmFormats", "FarmProtocol"]),
        .farmTests("FarmMediaTests", ["CFFmpeg", "FarmMedia", "FarmFormats", "FarmVerify", "FarmTestSupport"]),
        .farmTests("FarmVerifyTests", ["FarmVerify", "FarmFormats", "FarmMedia", "FarmTestSupport"]),
        .farmTests(
            "FarmCoordinatorTests",
            [
                "FarmCoordinator", "FarmTestSupport", "FarmFormats", "FarmMedia", "FarmProtocol", "FarmVerify",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .farmTests("FarmAgentTests", ["FarmAgent", "FarmProtocol"]),
        .farmTests(
            "FarmAPITests",
            [
                "FarmAPI", "FarmCoordinator", "FarmProtocol", "FarmTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .farmTests(
            "EndToEndTests",
            [
                "FarmAllInOne", "FarmCoordinator", "FarmAgent", "FarmTestSupport", "FarmFormats", "FarmMedia",
                "FarmVerify", "farm", .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ]
)
