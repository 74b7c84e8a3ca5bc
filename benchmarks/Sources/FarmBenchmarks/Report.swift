import Foundation

/// Writes `results/REPORT.md` from the results: tables of medians and ratios, PASS/MISS against the targets of
/// issue 11, and beside every figure the commands that reproduce it. The charts are drawn afterwards by
/// `benchmarks/charts.py` from `results/results.json` under the names this report links.
enum Report {
    enum Target {
        static let wallRatio = 0.95
        static let cpuRatio = 1.05
        static let memoryRatio = 1.2
        static let psnrDecibels = 0.2
        static let sizeFraction = 0.03
        static let firstSegmentFraction = 0.10
        static let extractionRatio = 2.0
        /// B-frames are turned on by default when they save at least this much rate at equal PSNR-Y.
        static let bFramesSaving = 5.0
    }

    static func markdown(_ results: Results, scale: String?) -> String {
        var lines: [String] = []
        lines.append("# farm against plain ffmpeg")
        lines.append("")
        lines.append("Written by `make bench` on \(results.date). Regenerate with `make bench`; the charts alone with")
        lines.append("`make bench-charts` (from `results.json`).")
        if results.quick {
            lines.append("")
            lines.append("> **Quick run** (`--quick`: one run each, short sources): for development only; its numbers")
            lines.append("> are not the issue's figures.")
        }
        lines.append("")
        lines.append("| machine | |")
        lines.append("| --- | --- |")
        lines.append("| CPU | \(results.machine.cpu) |")
        lines.append("| cores | \(results.machine.cores) |")
        lines.append("| memory | \(String(format: "%.1f", results.machine.memoryGiB)) GiB |")
        lines.append("| system | \(results.machine.os) |")
        lines.append("| ffmpeg | \(results.machine.ffmpeg) |")
        lines.append("| farm | \(results.machine.farm) |")
        lines.append("")
        lines.append(
            "How it measures: each side is one process tree, timed from spawn to exit; CPU is user + system from"
        )
        lines.append("`wait4`'s resource usage of the whole tree; peak memory is its `ru_maxrss` (the largest single")
        lines.append("process: the farm's coordinator and agents are one process). \(results.postgres)")
        lines.append("")
        for failure in results.failures {
            lines.append("**FAILED** \(failure)")
            lines.append("")
        }
        for ladder in results.ladders { lines += self.ladder(ladder) }
        if let first = results.firstSegment { lines += self.firstSegment(first) }
        if let extraction = results.extraction { lines += self.extraction(extraction) }
        if results.bFrames.isEmpty {
            lines.append("## 4. B-frames")
            lines.append("")
            lines.append("Not in this run (it does not fit in `make bench`'s 30 minutes): `make bench")
            lines.append(
                "BENCH_ARGS=\"--only b-frames\"` measures it. Its result, which made B-frames the default, is in"
            )
            lines.append("docs/PERFORMANCE.md, \"B-frames\".")
            lines.append("")
        } else {
            lines += self.bFrames(results.bFrames)
        }
        lines.append("## The coordinator at scale")
        lines.append("")
        lines.append("<!-- BEGIN scale: the contents of benchmarks/results/scale.md, when that file exists -->")
        lines.append(scale ?? "_Not run: `benchmarks/results/scale.md` does not exist._")
        lines.append("<!-- END scale -->")
        lines.append("")
        return lines.joined(separator: "\n")
    }

    static func verdict(_ pass: Bool) -> String { pass ? "**PASS**" : "**MISS**" }

    static func ratioRow(_ name: String, farm: Double, ffmpeg: Double, unit: String, target: Double) -> String {
        let ratio = farm / max(ffmpeg, 1e-9)
        return String(
            format: "| %@ | %.2f %@ | %.2f %@ | %.3f | ≤ %.2f | %@ |",
            name,
            farm,
            unit,
            ffmpeg,
            unit,
            ratio,
            target,
            self.verdict(ratio <= target)
        )
    }

    static func ladder(_ result: LadderResult) -> [String] {
        var lines = ["## 1. The ladder, \(result.seconds) s of 1080p30", ""]
        lines.append("![ladder \(result.seconds) s](ladder-\(result.seconds)s.png)")
        lines.append("")
        lines.append(
            (result.farm.runs.count > 1
                ? "Medians of \(result.farm.runs.count) runs each, alternating farm and ffmpeg. Rungs: "
                : "One run each (`--long-runs 3` for medians; `make bench` keeps under 30 minutes), farm first. Rungs: ")
                + result.rungs.map(\.name).joined(separator: ", ") + ", and AAC audio."
        )
        lines.append("")
        lines.append("| | farm | ffmpeg | farm/ffmpeg | target | |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        lines.append(
            self.ratioRow(
                "wall",
                farm: result.farm.wall,
                ffmpeg: result.ffmpeg.wall,
                unit: "s",
                target: Target.wallRatio
            )
        )
        lines.append(
            self.ratioRow("CPU", farm: result.farm.cpu, ffmpeg: result.ffmpeg.cpu, unit: "s", target: Target.cpuRatio)
        )
        lines.append(
            self.ratioRow(
                "peak memory",
                farm: result.farm.peakMemoryMiB,
                ffmpeg: result.ffmpeg.peakMemoryMiB,
                unit: "MiB",
                target: Target.memoryRatio
            )
        )
        lines.append("")
        lines.append(
            String(
                format: "The farm's CPU includes %.2f s (median) spent by its PostgreSQL server meanwhile.",
                result.farm.outsideCPU
            )
        )
        lines.append("")
        lines.append("| rung | PSNR-Y farm | PSNR-Y ffmpeg | Δ dB | size farm | size ffmpeg | Δ size | |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for rung in result.rungs {
            let sizeDelta = Double(rung.farmBytes - rung.ffmpegBytes) / Double(max(rung.ffmpegBytes, 1))
            var pass = abs(sizeDelta) <= Target.sizeFraction
            var psnr = "| – | – | – "
            if let farm = rung.farmPSNR, let ffmpeg = rung.ffmpegPSNR {
                pass = pass && abs(farm - ffmpeg) <= Target.psnrDecibels
                psnr = String(format: "| %.2f | %.2f | %+.2f ", farm, ffmpeg, farm - ffmpeg)
            }
            lines.append(
                "| \(rung.name) "
                    + psnr
                    + String(
                        format: "| %.0f kB | %.0f kB | %+.1f %% | %@ |",
                        Double(rung.farmBytes) / 1000,
                        Double(rung.ffmpegBytes) / 1000,
                        sizeDelta * 100,
                        self.verdict(pass)
                    )
            )
        }
        lines.append("")
        lines.append(
            "Targets per rung: within \(Target.psnrDecibels) dB PSNR-Y and \(Int(Target.sizeFraction * 100)) % size."
        )
        if result.rungs.first?.farmPSNR == nil {
            lines.append("PSNR is measured on the shortest ladder source only (it decodes every rung again).")
        }
        lines.append("")
        lines.append(
            "Reproduce (`make bench BENCH_ARGS=\"--only ladder --ladder-seconds \(result.seconds)\"` runs all of it):"
        )
        lines.append("")
        lines.append("```sh")
        lines.append("# the source")
        lines += result.sourceCommands
        lines.append("# the farm (defaults; the PostgreSQL is the one started before the runs)")
        lines.append(result.farm.command)
        lines.append("# plain ffmpeg, one process: the same rungs, caps, encoder options, segments, poster and sprite")
        lines.append(result.ffmpeg.command)
        if !result.psnrCommands.isEmpty {
            lines.append("# PSNR-Y per rung, farm then ffmpeg")
            lines += result.psnrCommands
        }
        lines.append("```")
        lines.append("")
        return lines
    }

    static func firstSegment(_ result: FirstSegmentResult) -> [String] {
        var lines = ["## 2. Time to the first playable segment, \(result.minutes) min of \(result.height)p30", ""]
        lines.append("![first segment](first-segment.png)")
        lines.append("")
        lines.append(
            "From start until every rendition (each rung and the audio) has a media playlist naming a segment that"
        )
        lines.append(
            "exists, polling the output folder every 50 ms. One run each. The target is stated for a 10-minute"
        )
        lines.append(
            "1080p job; a 1080p one is too slow for this benchmark, so the source is \(result.height)p, made by"
        )
        lines.append("repeating one minute with `-stream_loop` and `-c copy`.")
        lines.append("")
        lines.append("| | first playable | whole job | first/whole | target | |")
        lines.append("| --- | --- | --- | --- | --- | --- |")
        for (name, side, target) in [("farm (2 agents)", result.farm, true), ("ffmpeg", result.ffmpeg, false)] {
            let first = side.firstPlayable.map { String(format: "%.2f s", $0) } ?? "only at the end"
            let fraction = (side.firstPlayable ?? side.wall) / max(side.wall, 1e-9)
            lines.append(
                "| \(name) | \(first) | "
                    + String(format: "%.2f s | %.3f | ", side.wall, fraction)
                    + (target
                        ? String(
                            format: "≤ %.2f | %@ |",
                            Target.firstSegmentFraction,
                            self.verdict(fraction <= Target.firstSegmentFraction)
                        )
                        : "| |")
            )
        }
        lines.append("")
        lines.append("Reproduce (`make bench BENCH_ARGS=\"--only first-segment\"`):")
        lines.append("")
        lines.append("```sh")
        lines += result.sourceCommands
        lines.append(result.farm.command)
        lines.append(result.ffmpeg.command)
        lines.append("```")
        lines.append("")
        return lines
    }

    static func extraction(_ result: ExtractionResult) -> [String] {
        var lines = [
            "## 3. Extracting the first and the last chunk of \(result.minutes) min of \(result.height)p30", "",
        ]
        lines.append("![extraction](extraction.png)")
        lines.append("")
        lines.append(
            "`SourceProbe.probe` (\(String(format: "%.2f", result.probeSeconds)) s), `ChunkPlanner.plan` with the default"
                + " job settings (\(result.chunkCount) chunks), then `ChunkExtractor.extractVideo` of chunk"
                + " \(result.firstChunk + 1) and chunk \(result.lastChunk + 1), \(result.firstRuns.count) runs each,"
                + " alternating, in this process."
        )
        lines.append("")
        lines.append("| chunk | median | runs | bytes |")
        lines.append("| --- | --- | --- | --- |")
        for (name, runs, bytes) in [
            ("first", result.firstRuns, result.firstBytes), ("last", result.lastRuns, result.lastBytes),
        ] {
            lines.append(
                String(format: "| %@ | %.1f ms | ", name, median(runs) * 1000)
                    + runs.map { String(format: "%.1f", $0 * 1000) }.joined(separator: ", ") + " ms | \(bytes) |"
            )
        }
        lines.append("")
        lines.append(
            String(
                format: "Last/first: **%.2f**, target ≤ %.0f: %@.",
                result.ratio,
                Target.extractionRatio,
                self.verdict(result.ratio <= Target.extractionRatio)
            )
        )
        lines.append("")
        lines.append("Reproduce (`make bench BENCH_ARGS=\"--only extraction\"`; the calls are in")
        lines.append("`benchmarks/Sources/FarmBenchmarks/ExtractionBenchmark.swift`):")
        lines.append("")
        lines.append("```sh")
        lines += result.sourceCommands
        lines.append("```")
        lines.append("")
        return lines
    }

    static func bFrames(_ sources: [BFramesSource]) -> [String] {
        var lines = ["## 4. B-frames, measured", ""]
        lines.append(
            "Each rung encoded as one continuous stream with the farm's options, without the rungs' rate caps (a"
                + " capped point's rate is the cap's whatever the coding), at CRF "
                + BFramesBenchmark.crfs.map(String.init).joined(separator: ", ")
                + ", B-frames off (`bframes=0`) and as the preset has them (3, the farm's default); PSNR-Y against"
                + " the source scaled by the same scaler; BD-rate of on against off (negative: B-frames need that"
                + " much less rate at equal PSNR-Y). The decision rule is issue 11's: on by default if the ladder saves at least "
                + String(format: "%.0f", Target.bFramesSaving) + "%."
        )
        lines.append("")
        for source in sources {
            lines.append(
                String(format: "**%@** (%.0f s): %@.", source.name, source.seconds, source.about)
            )
            lines.append("")
            lines.append("| rung | BD-rate | off: kb/s @ PSNR-Y, CRF 19…31 | on: kb/s @ PSNR-Y |")
            lines.append("| --- | --- | --- | --- |")
            func curve(_ points: [RatePoint]) -> String {
                points.map { String(format: "%.0f @ %.2f", $0.kilobitsPerSecond, $0.psnr) }.joined(separator: ", ")
            }
            for rung in source.rungs {
                let rate = rung.bdRate.map { String(format: "%+.1f%%", $0) } ?? "not measurable"
                lines.append("| \(rung.name) | \(rate) | \(curve(rung.off)) | \(curve(rung.on)) |")
            }
            let mean = source.meanBDRate.map { String(format: "%+.1f%%", $0) } ?? "n/a"
            lines.append("| **ladder (mean of the measurable rungs)** | **\(mean)** | | |")
            lines.append("")
            if source.rungs.contains(where: { $0.bdRate == nil }) {
                lines.append(
                    "Not measurable: a curve whose PSNR-Y does not rise with its rate (a picture so flat that every"
                        + " CRF gives the same quality); the mean leaves it out."
                )
                lines.append("")
            }
            lines.append("```sh")
            lines += source.sourceCommands
            lines.append("# off, CRF 23 (the other CRFs change -crf only):")
            lines.append(source.offCommand)
            lines.append("# on, CRF 23:")
            lines.append(source.onCommand)
            lines.append("# PSNR-Y of one encode's rungs:")
            lines.append(source.psnrCommand)
            lines.append("```")
            lines.append("")
        }
        let means = sources.compactMap(\.meanBDRate)
        let saving = means.isEmpty ? 0 : -means.reduce(0, +) / Double(means.count)
        lines.append(
            String(
                format: "Across the sources B-frames save **%.1f%%** of rate at equal PSNR-Y (threshold %.0f%%): %@.",
                saving,
                Target.bFramesSaving,
                saving >= Target.bFramesSaving
                    ? "above it, so issue 11 asks for them on by default" : "below it, so they stay off"
            )
        )
        lines.append("")
        return lines
    }
}
