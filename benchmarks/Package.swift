// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package (as swift-nio's Benchmarks/ do), so their tooling never enters the product.
let package = Package(
    name: "farm-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so the dependency resolves whatever the checkout folder is called (a worktree, a CI clone).
        .package(name: "farm", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "FarmBenchmarks",
            dependencies: [
                .product(name: "FarmFormats", package: "farm"), .product(name: "FarmMedia", package: "farm"),
                .product(name: "FarmProtocol", package: "farm"),
            ],
            path: "Sources/FarmBenchmarks"
        )
    ]
)
