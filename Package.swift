// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Our own targets only; dependencies keep their warnings as warnings.
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "farm",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "farm", targets: ["farm"]),
        .library(name: "FarmCoordinator", targets: ["FarmCoordinator"]),
        .library(name: "FarmAgent", targets: ["FarmAgent"]),
        .library(name: "FarmMedia", targets: ["FarmMedia"]),
        .library(name: "FarmProtocol", targets: ["FarmProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
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
        .target(
            name: "FarmMedia",
            dependencies: [
                "CFFmpeg",
                "FarmProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Media/FarmMedia",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FarmProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Protocol",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FarmCoordinator",
            dependencies: [
                "FarmMedia",
                "FarmProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Coordinator",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FarmAgent",
            dependencies: [
                "FarmMedia",
                "FarmProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Agent",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "farm",
            dependencies: [
                "FarmCoordinator",
                "FarmAgent",
                "FarmMedia",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "CLI",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "FarmTestSupport",
            dependencies: [
                "FarmCoordinator",
                "FarmAgent",
                "FarmProtocol",
                "FarmMedia",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/FarmTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FarmProtocolTests",
            dependencies: [
                "FarmProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            path: "Tests/FarmProtocolTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FarmMediaTests",
            dependencies: ["FarmMedia", "FarmTestSupport"],
            path: "Tests/FarmMediaTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FarmCoordinatorTests",
            dependencies: [
                "FarmCoordinator", "FarmTestSupport", "FarmMedia", "FarmProtocol",
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/FarmCoordinatorTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FarmAgentTests",
            dependencies: ["FarmAgent", "FarmProtocol"],
            path: "Tests/FarmAgentTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["FarmCoordinator", "FarmAgent", "FarmTestSupport", "FarmMedia", "farm"],
            path: "Tests/EndToEndTests",
            swiftSettings: swiftSettings
        ),
    ]
)
