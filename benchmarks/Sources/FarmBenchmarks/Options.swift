import Foundation

/// What `make bench BENCH_ARGS="..."` may change. The defaults are the full run the report is written for; `--quick`
/// is for development (one run each, short sources), and its report says so at the top.
struct Options: Sendable {
    enum Figure: String, CaseIterable, Sendable {
        case ladder
        case firstSegment = "first-segment"
        case extraction
        case bFrames = "b-frames"
    }

    var quick = false
    /// Runs of each side in the ladder figure's shortest source, alternating farm and ffmpeg.
    var runs = 3
    /// Runs of each side for the longer ladder sources (a 120 s ladder run takes over two minutes a side here).
    var longRuns = 1
    /// The ladder figure's source lengths, seconds of 1080p30.
    var ladderSeconds = [30, 120]
    /// The first-segment figure's source: minutes and height. 360p (a 2-rung ladder), not more: the figure is a ratio
    /// of the same job's times, and at 480p its two sides took 6 of `make bench`'s 30 minutes.
    var firstSegmentMinutes = 10
    var firstSegmentHeight = 360
    /// The extraction figure's source: minutes and height, and timed runs of each chunk.
    var extractionMinutes = 60
    var extractionHeight = 360
    var extractionRuns = 5
    /// The B-frames figure's sources: seconds of 1080p30 each.
    var bFramesSeconds = 10
    /// Every figure but B-frames', which decided the default and does not fit in `make bench`'s 30 minutes:
    /// `--only b-frames` runs it (its result is in docs/PERFORMANCE.md, "B-frames").
    var figures = Set(Figure.allCases).subtracting([.bFrames])

    static let usage = """
        usage: FarmBenchmarks [--quick] [--runs N] [--long-runs N] [--ladder-seconds 30,120] [--first-segment-minutes 10]
                              [--extraction-minutes 60] [--extraction-runs 5] [--b-frames-seconds 10]
                              [--only ladder,first-segment,extraction,b-frames]
        """

    init(_ arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        func value(_ flag: String) throws -> String {
            guard let value = iterator.next() else { throw BenchError("\(flag) needs a value\n\(Self.usage)") }
            return value
        }
        func number(_ flag: String) throws -> Int {
            let text = try value(flag)
            guard let number = Int(text), number > 0 else {
                throw BenchError("\(flag) takes a positive whole number, not '\(text)'")
            }
            return number
        }
        while let argument = iterator.next() {
            switch argument {
            case "--quick":
                self.quick = true
                self.runs = 1
                self.longRuns = 1
                self.ladderSeconds = [6, 12]
                self.firstSegmentMinutes = 1
                self.firstSegmentHeight = 360
                self.extractionMinutes = 10
                self.extractionHeight = 240
                self.extractionRuns = 3
                self.bFramesSeconds = 3
            case "--runs": self.runs = try number(argument)
            case "--long-runs": self.longRuns = try number(argument)
            case "--ladder-seconds":
                let list = try value(argument).split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
                guard !list.isEmpty else { throw BenchError("--ladder-seconds takes a list such as 30,120") }
                self.ladderSeconds = list
            case "--first-segment-minutes": self.firstSegmentMinutes = try number(argument)
            case "--extraction-minutes": self.extractionMinutes = try number(argument)
            case "--extraction-runs": self.extractionRuns = try number(argument)
            case "--b-frames-seconds": self.bFramesSeconds = try number(argument)
            case "--only":
                let names = try value(argument).split(separator: ",").map(String.init)
                self.figures = Set(
                    try names.map { name in
                        guard let figure = Figure(rawValue: name) else {
                            throw BenchError(
                                "unknown figure \(name); choose among "
                                    + Figure.allCases.map(\.rawValue).joined(separator: ", ")
                            )
                        }
                        return figure
                    }
                )
            case "-h", "--help":
                print(Self.usage)
                exit(0)
            default: throw BenchError("unknown argument \(argument)\n\(Self.usage)")
            }
        }
    }
}

/// A benchmark failure that says what to do.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
