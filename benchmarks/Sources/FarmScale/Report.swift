import Foundation

/// The targets of the scale benchmark (issue 11).
enum Target {
    static let rateOfPgbench = 0.80
    static let p99LeaseMs = 25.0
    static let efficiency = 0.95
}

struct Report: Codable {
    var command: String
    var date: String
    var simulation: String
    var runs: [RunResult]
    var failures: [String]
    var pgbench: PgbenchResult?
}

func verdict(_ pass: Bool) -> String { pass ? "PASS" : "MISS" }

func writeReport(
    runs: [RunResult],
    failures: [String],
    pgbench: PgbenchResult?,
    options: Options,
    commandLine: String,
    results: URL
)
    throws
{
    try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
    let simulation =
        "SIMULATED agents: real coordinator process, real PostgreSQL, the real protocol over TCP; each agent "
        + "receives the real source bytes, sleeps in proportion to pixels x frames of the task's renditions, and "
        + "replays the outputs a real agent encoded for the same task in a priming run"
    let report = Report(
        command: commandLine,
        date: ISO8601DateFormatter().string(from: Date()),
        simulation: simulation,
        runs: runs,
        failures: failures,
        pgbench: pgbench
    )
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: results.appendingPathComponent("scale.json"))

    func f(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
    var md = "## The coordinator at scale (simulated agents)\n\n"
    md += "\(simulation). Command: `\(commandLine)` (\(report.date)); every figure below comes from this one run, "
    md += "also in `benchmarks/results/scale.json`.\n\n"
    md += "| run | slots | jobs | tasks | wall s | ideal s | list-sched. s | results/s | lease p50 ms | lease p99 ms "
    md += "| efficiency | coord. CPU ms/task | PG CPU s | source MB/s | segments MB/s | stitch drain s |\n"
    md += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for run in runs {
        md += "| \(run.name) | \(run.slots) | \(run.jobs) | \(run.tasks) | \(f(run.wallSeconds)) | "
        md += "\(f(run.idealWallSeconds)) | \(f(run.listSchedulingWallSeconds)) | \(f(run.acceptedPerSecond)) | "
        md += "\(f(run.leaseP50Ms)) | \(f(run.leaseP99Ms)) | \(f(run.efficiency * 100))% | "
        md += "\(f(run.coordinatorCPUMsPerTask)) | \(f(run.postgresCPUSeconds)) | "
        md += "\(f(run.sourceBytesPerSecond / 1e6, 2)) | \(f(run.segmentBytesPerSecond / 1e6, 2)) | "
        md += "\(f(run.stitchDrainSeconds)) |\n"
    }
    md += "\nWall: first simulated agent started to last result accepted. Ideal: total simulated encode / slots. "
    md += "List-sched.: what a zero-overhead coordinator would take handing out the same tasks in lease order "
    md += "(the last round does not fill every slot). Coordinator CPU from `/proc/PID/stat` over the wall; "
    md += "PostgreSQL's (postmaster and backends) separately. Stitch drain: last result to every job ready.\n\n"
    for failure in failures { md += "**FAILED** \(failure)\n\n" }
    if let pgbench {
        md += "pgbench, the same lease and complete statements (`\(pgbench.command)`): "
        md += "\(f(pgbench.transactionsPerSecond)) lease+complete per second, "
        md += "\(f(pgbench.latencyAverageMs, 2)) ms average with \(pgbench.clients) clients.\n\n"
    } else {
        md += "pgbench: not run yet (it runs after the scenarios; this report was written part-way).\n\n"
    }
    let largest = runs.filter { !$0.name.hasPrefix("hd") }.max { $0.slots < $1.slots }
    if let largest {
        md += "| target | measured (\(largest.slots) slots) | verdict |\n| --- | --- | --- |\n"
        if let pgbench {
            let ratio = largest.acceptedPerSecond / max(pgbench.transactionsPerSecond, 1e-9)
            md +=
                "| coordinator rate / pgbench rate ≥ 80% | \(f(ratio * 100))% | \(verdict(ratio >= Target.rateOfPgbench)) |\n"
        }
        md +=
            "| p99 lease latency < 25 ms | \(f(largest.leaseP99Ms)) ms | \(verdict(largest.leaseP99Ms < Target.p99LeaseMs)) |\n"
        md +=
            "| scaling efficiency ≥ 95% | \(f(largest.efficiency * 100))% | \(verdict(largest.efficiency >= Target.efficiency)) |\n\n"
    }
    if let hd = runs.first(where: { $0.name.hasPrefix("hd") }) {
        md +=
            "The \(options.hdSeconds) s 1080p\(options.hdFrameRate) job on \(hd.slots) simulated slots: \(f(hd.submitToReadySeconds)) s "
        md += "from submit to ready, \(f(hd.wallSeconds)) s of leasing against an ideal of \(f(hd.idealWallSeconds)) s "
        md += "(\(f(hd.efficiency * 100))%), then \(f(hd.stitchDrainSeconds)) s of stitching.\n\n"
    }
    for run in runs where run.rejected > 0 {
        md += "\(run.name): \(run.rejected) results refused, first: \(run.firstRejections.joined(separator: "; "))\n\n"
    }
    if let profiled = runs.first(where: { $0.profile != nil }), let profile = profiled.profile {
        md += "Coordinator profile under load (\(profiled.name), `perf record -g -p PID`, then `perf report --stdio "
        md += "--no-children -g none --sort dso[,symbol]`).\n\n"
        md += "```\n" + profile.joined(separator: "\n") + "\n```\n"
    }
    for run in runs {
        guard let statements = run.postgresStatements, !statements.isEmpty else { continue }
        md +=
            "\nPostgreSQL's busiest statements in \(run.name) (`pg_stat_statements`, reset before the run; total ms | "
        md += "calls | mean ms | statement):\n\n```\n" + statements.joined(separator: "\n") + "\n```\n"
    }
    try md.write(to: results.appendingPathComponent("scale.md"), atomically: true, encoding: .utf8)
    FileHandle.standardError.write(Data("[scale] wrote \(results.appendingPathComponent("scale.md").path)\n".utf8))
}
