// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package (as swift-nio's Benchmarks/ do), so their tooling never enters the product.
let package = Package(
    name: "farm-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so the dependency resolves whatever the checkout folder is called (a worktree, a CI clone).
        .package(name: "farm", path: ".."),
        // Already in the farm's graph (same versions); FarmScale's simulated agents speak TCP and HMAC themselves.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .executableTarget(
            name: "FarmBenchmarks",
            dependencies: [
                .product(name: "FarmFormats", package: "farm"), .product(name: "FarmMedia", package: "farm"),
                .product(name: "FarmProtocol", package: "farm"),
            ],
            path: "Sources/FarmBenchmarks"
        ),
        // The coordinator at scale: the real `farm coordinator` process and PostgreSQL, simulated agents over real
        // TCP, and pgbench on the same statements as the ceiling (docs in benchmarks/results/scale.md).
        .executableTarget(
            name: "FarmScale",
            dependencies: [
                .product(name: "FarmProtocol", package: "farm"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/FarmScale"
        ),
    ]
)
