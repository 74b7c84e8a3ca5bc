import FarmProtocol

/// The output ladder: which rungs a source gets, never above its own height.
public enum Ladder {
    public struct Rung: Sendable, Equatable {
        public var name: String
        public var height: Int
        public var maxBitrate: Int
    }

    /// The default ladder (README.md, "Output") (peak bitrates for capped-CRF H.264).
    public static let standard: [Rung] = [
        Rung(name: "240p", height: 240, maxBitrate: 400_000),
        Rung(name: "360p", height: 360, maxBitrate: 800_000),
        Rung(name: "480p", height: 480, maxBitrate: 1_500_000),
        Rung(name: "720p", height: 720, maxBitrate: 3_000_000),
        Rung(name: "1080p", height: 1080, maxBitrate: 6_000_000),
        Rung(name: "1440p", height: 1440, maxBitrate: 10_000_000),
        Rung(name: "2160p", height: 2160, maxBitrate: 20_000_000),
    ]

    /// The renditions for a picture displayed at `displayWidth`x`displayHeight`: every rung not above the source
    /// height, widths keeping the display aspect ratio rounded to even. A source below the lowest rung gets one
    /// rendition at its own size.
    public static func renditions(
        displayWidth: Int,
        displayHeight: Int,
        rungs: [Rung] = Ladder.standard
    ) -> [RenditionSpec] {
        func even(_ value: Double) -> Int { max(2, Int((value / 2).rounded()) * 2) }
        let aspect = Double(displayWidth) / Double(max(displayHeight, 1))
        var chosen = rungs.filter { $0.height <= displayHeight }.map {
            RenditionSpec(
                name: $0.name,
                width: even(Double($0.height) * aspect),
                height: $0.height,
                maxBitrate: $0.maxBitrate
            )
        }
        if chosen.isEmpty, let lowest = rungs.first {
            let height = even(Double(displayHeight))
            chosen = [
                RenditionSpec(
                    name: "\(height)p",
                    width: even(Double(displayWidth)),
                    height: height,
                    maxBitrate: lowest.maxBitrate
                )
            ]
        }
        return chosen
    }

    /// Parses a ladder given by rung names, e.g. "240p,360p,480p".
    public static func rungs(named names: [String]) throws -> [Rung] {
        try names.map { name in
            guard let rung = Ladder.standard.first(where: { $0.name == name }) else {
                throw MediaError(
                    .unsupportedInput,
                    "unknown rung \(name); choose among \(Ladder.standard.map(\.name).joined(separator: ", "))"
                )
            }
            return rung
        }
    }
}
