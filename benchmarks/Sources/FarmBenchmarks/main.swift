import FarmMedia
import Foundation

// `make bench`: the farm side by side with the plain ffmpeg way, in one run on one machine, reported as ratios in
// benchmarks/results/REPORT.md (issue 11: speed is measured here, never as a timed unit test).
//
//   swift run -c release --package-path benchmarks FarmBenchmarks [--quick] [--only ladder,first-segment,extraction]

do {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let workspace = try Workspace()
    let started = ContinuousClock.now
    var results = Results(
        date: ISO8601DateFormatter().string(from: Date()),
        quick: options.quick,
        machine: Machine.describe(workspace),
        postgres: ""
    )

    /// Runs one figure; a failure is recorded in the report (and makes the run exit 1) and the next figure runs.
    func figure(_ name: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            say("\(name) FAILED: \(error)")
            results.failures.append("\(name): \(error)")
        }
    }

    if options.figures.contains(.extraction) {
        let source = try BenchSources.looped(
            minutes: options.extractionMinutes,
            height: options.extractionHeight,
            bitrate: "600k",
            in: workspace
        )
        figure("extraction") {
            results.extraction = try ExtractionBenchmark(workspace: workspace, runs: options.extractionRuns)
                .run(source: source, minutes: options.extractionMinutes, height: options.extractionHeight)
        }
    }

    if options.figures.contains(.ladder) || options.figures.contains(.firstSegment) {
        let farm = try FarmRunner(workspace: workspace)
        defer { farm.stop() }
        results.postgres =
            "The farm's PostgreSQL is started once before the runs (`deploy/postgres.sh start \(farm.directory)"
            + " \(FarmRunner.port)`) and passed with `--database-url`, so no run pays for `initdb`; its server's CPU"
            + " (postmaster and backends, from `/proc`) during each run is added to the farm's CPU. One untimed farm"
            + " transcode and one untimed ffmpeg run of the ladder source's first 6 s come first (migrations, page cache)."
        let longest = options.ladderSeconds.max() ?? 30
        let shortest = options.ladderSeconds.min() ?? 30
        let sources = try options.ladderSeconds.map {
            try BenchSources.ladder(seconds: $0, longest: longest, in: workspace)
        }
        // A few seconds of the ladder's source: the warm-up pays for the migrations and loads the programs; a whole
        // ladder run of it cost a minute of `make bench` for nothing more.
        if !sources.isEmpty {
            let warmUp = try BenchSources.ladder(seconds: min(6, shortest), longest: longest, in: workspace)
            say("warm-up (untimed)")
            _ = try farm.transcode(
                source: warmUp.path,
                output: workspace.work.appendingPathComponent("warm-up-farm").path,
                log: workspace.log("warm-up-farm")
            )
            let output = try workspace.freshOutput("warm-up-ffmpeg")
            let info = try SourceProbe.probe(path: warmUp.path)
            _ = try ProcessRun.run(
                PlainFFmpeg.ladder(source: info, output: output),
                log: workspace.log("warm-up-ffmpeg")
            )
        }
        if options.figures.contains(.ladder) {
            for (seconds, source) in zip(options.ladderSeconds, sources) {
                // The longer ladders run fewer times (`--long-runs`), so that `make bench` stays under 30 minutes.
                let runs = seconds == shortest ? options.runs : options.longRuns
                let benchmark = LadderBenchmark(workspace: workspace, farm: farm, runs: runs)
                figure("ladder \(seconds) s") {
                    results.ladders.append(
                        try benchmark.run(source: source, seconds: seconds, measureQuality: seconds == shortest)
                    )
                }
            }
        }
        if options.figures.contains(.firstSegment) {
            let source = try BenchSources.looped(
                minutes: options.firstSegmentMinutes,
                height: options.firstSegmentHeight,
                bitrate: "1500k",
                in: workspace
            )
            figure("first segment") {
                results.firstSegment = try FirstSegmentBenchmark(workspace: workspace, farm: farm)
                    .run(source: source, minutes: options.firstSegmentMinutes, height: options.firstSegmentHeight)
            }
        }
    }

    if options.figures.contains(.bFrames) {
        let seconds = options.bFramesSeconds
        let pattern = try BenchSources.ladder(
            seconds: seconds,
            longest: options.ladderSeconds.max() ?? 30,
            in: workspace
        )
        let fractal = try BenchSources.fractal(seconds: seconds, in: workspace)
        let benchmark = BFramesBenchmark(workspace: workspace)
        figure("B-frames") {
            results.bFrames = [
                try benchmark.run(
                    source: pattern,
                    name: "pattern",
                    about: "the ladder figure's source (testsrc2 with light noise), its first \(seconds) s"
                ),
                try benchmark.run(
                    source: fractal,
                    name: "fractal",
                    about: "a slow zoom into the Mandelbrot set with light grain: smooth gradients and fine detail "
                        + "(synthetic, standing in for camera footage)"
                ),
            ]
        }
    }

    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(results).write(to: workspace.results.appendingPathComponent("results.json"))
    let scale = try? String(contentsOf: workspace.results.appendingPathComponent("scale.md"), encoding: .utf8)
    let report = workspace.results.appendingPathComponent("REPORT.md")
    try Report.markdown(results, scale: scale).write(to: report, atomically: true, encoding: .utf8)
    say(String(format: "wrote %@ in %.0f s", workspace.relative(report.path), (ContinuousClock.now - started).seconds))
    if !results.failures.isEmpty {
        FileHandle.standardError.write(Data("bench: \(results.failures.count) figure(s) failed; see the report\n".utf8))
        exit(1)
    }
} catch {
    FileHandle.standardError.write(Data("bench: \(error)\n".utf8))
    exit(1)
}
