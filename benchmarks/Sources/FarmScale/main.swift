import FarmProtocol
import Foundation
import NIOCore

// The coordinator at scale (SIMULATED agents, real coordinator, real PostgreSQL, real protocol), and pgbench on the
// coordinator's own lease and complete statements as the ceiling.
//
//   swift run -c release --package-path benchmarks FarmScale [--quick] [--slots 10,100,800] [--jobs 20]
//       [--source-seconds 300] [--target-seconds 30] [--hd-seconds 600] [--hd-frame-rate 10] [--hd-rungs 240p,...]
//       [--no-hd]
//       [--profile] [--pg-port 55443] [--work /tmp/farm-scale]
//
// Needs ../.build/release/farm (`swift build -c release`), ffmpeg, psql, pgbench, deploy/postgres.sh; writes
// benchmarks/results/scale.json and scale.md.

struct Options {
    var quick = false
    var slots = [10, 100, 800]
    var jobs = 20
    var sourceSeconds = 300
    var targetSeconds = 30.0
    var hdSeconds = 600
    /// 10, not 30: the job's tasks (one per 6 s segment and group of rungs) are the same, and its priming encode, the
    /// real work behind the replay, takes a third as long (at 30 fps it took 7.4 of `make bench`'s 30 minutes, at 15
    /// fps 3.6).
    var hdFrameRate = 10
    var hdRungs: String?
    var hd = true
    var profile = false
    var pgPort = 55443
    var work = "/tmp/farm-scale"

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--quick":
                self.quick = true
                self.slots = [10, 100]
                self.jobs = 3
                self.sourceSeconds = 60
                self.targetSeconds = 8
                self.hdSeconds = 60
            case "--slots": self.slots = (iterator.next() ?? "").split(separator: ",").compactMap { Int($0) }
            case "--jobs": self.jobs = Int(iterator.next() ?? "") ?? self.jobs
            case "--source-seconds": self.sourceSeconds = Int(iterator.next() ?? "") ?? self.sourceSeconds
            case "--target-seconds": self.targetSeconds = Double(iterator.next() ?? "") ?? self.targetSeconds
            case "--hd-seconds": self.hdSeconds = Int(iterator.next() ?? "") ?? self.hdSeconds
            case "--hd-rungs": self.hdRungs = iterator.next()
            case "--hd-frame-rate": self.hdFrameRate = Int(iterator.next() ?? "") ?? self.hdFrameRate
            case "--no-hd": self.hd = false
            case "--profile": self.profile = true
            case "--pg-port": self.pgPort = Int(iterator.next() ?? "") ?? self.pgPort
            case "--work": self.work = iterator.next() ?? self.work
            default:
                FileHandle.standardError.write(Data("FarmScale: unknown argument \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let commandLine =
    (ProcessInfo.processInfo.environment["FARM_BINARY"].map { "FARM_BINARY=\($0) " } ?? "")
    + "swift run -c release --package-path benchmarks FarmScale "
    + CommandLine.arguments.dropFirst().joined(separator: " ")
let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let root = benchmarks.deletingLastPathComponent()
let farm = ProcessInfo.processInfo.environment["FARM_BINARY"] ?? root.appendingPathComponent(".build/release/farm").path
guard FileManager.default.isExecutableFile(atPath: farm) else {
    FileHandle.standardError.write(Data("FarmScale: \(farm) is missing; build it with `swift build -c release`\n".utf8))
    exit(1)
}
func log(_ message: String) { FileHandle.standardError.write(Data("[scale] \(message)\n".utf8)) }

let work = URL(fileURLWithPath: options.work)
try? FileManager.default.removeItem(at: work.appendingPathComponent("out"))
try FileManager.default.createDirectory(at: work.appendingPathComponent("out"), withIntermediateDirectories: true)
let secret = "farm-scale-benchmark"

// Sources: a short clip looped with -c copy, so long sources cost seconds to make.
@MainActor
func loopedSource(width: Int, height: Int, rate: Int = 30, seconds: Int) throws -> String {
    let clipSeconds = min(seconds, 20)
    let clip = work.appendingPathComponent("clip-\(height)p\(rate)-\(clipSeconds)s.mp4").path
    if !FileManager.default.fileExists(atPath: clip) {
        try shell([
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
            "testsrc2=size=\(width)x\(height):rate=\(rate):duration=\(clipSeconds)", "-f", "lavfi", "-i",
            "sine=frequency=440:sample_rate=48000:duration=\(clipSeconds)", "-c:v", "libx264", "-preset", "ultrafast",
            "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", clip,
        ])
    }
    let source = work.appendingPathComponent("source-\(height)p\(rate)-\(seconds)s.mp4").path
    if !FileManager.default.fileExists(atPath: source) {
        try shell([
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "\(seconds / clipSeconds)", "-i", clip,
            "-c", "copy", "-t", "\(seconds)", source,
        ])
    }
    return source
}

// PostgreSQL and the real coordinator, as processes.
let pgDirectory = work.appendingPathComponent("pg").path
// pg_stat_statements says which statements PostgreSQL's CPU goes to in each scenario (a server left running by an
// earlier run without it has none: the report then says so).
let databaseURL = try shell([
    "FARM_POSTGRES_OPTIONS=-c shared_preload_libraries=pg_stat_statements",
    "bash", root.appendingPathComponent("deploy/postgres.sh").path, "start", pgDirectory, "\(options.pgPort)",
]).trimmingCharacters(in: .whitespacesAndNewlines)
let database = Database(url: databaseURL)
// A clean database each run: the figures are for these jobs only.
try database.rows("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
_ = try? database.rows("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
let postmaster = Int32(
    (try String(contentsOfFile: "\(pgDirectory)/data/postmaster.pid", encoding: .utf8)).split(separator: "\n")[0]
)!

let portFile = work.appendingPathComponent("coordinator.port").path
try? FileManager.default.removeItem(atPath: portFile)
let coordinator = try spawn(
    [
        farm, "coordinator", "--database-url", databaseURL, "--listen", "127.0.0.1:0", "--port-file", portFile,
        "--secret", secret, "--log-level", "warning", "--http", "off",
    ],
    log: work.appendingPathComponent("coordinator.log").path
)
func boundPort() -> Int {
    for _ in 0..<300 {
        let text = (try? String(contentsOfFile: portFile, encoding: .utf8)) ?? ""
        if let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), port > 0 { return port }
        usleep(100_000)
    }
    return 0
}
let port = boundPort()
guard port > 0 else {
    log("the coordinator did not start; see coordinator.log")
    exit(1)
}
log("coordinator pid \(coordinator.processIdentifier) on port \(port); PostgreSQL \(databaseURL)")

@MainActor
func submit(_ source: String, output: String, rungs: String?) throws -> Int64 {
    var arguments = [
        // ultrafast without B-frames: the priming encode is the real work here, and the simulation needs its
        // outputs, not their quality (the 1080p prime took 7.4 of `make bench`'s 30 minutes with the default 3).
        farm, "submit", source, "-o", output, "--database-url", databaseURL, "--preset", "ultrafast",
        "--b-frames", "0", "--minimum-chunks", "10000",
    ]
    if let rungs { arguments += ["--rungs", rungs] }
    return Int64(try shell(arguments).trimmingCharacters(in: .whitespacesAndNewlines))!
}

@MainActor
func waitForJobs(_ ids: [Int64], states: Set<String>, timeout: Double = 3600) throws {
    let list = ids.map(String.init).joined(separator: ",")
    let started = ContinuousClock.now
    while (ContinuousClock.now - started).seconds < timeout {
        let rows = try database.rows("SELECT state, coalesce(error, '') FROM jobs WHERE id IN (\(list))")
        if let failed = rows.first(where: { $0[0] == "failed" || $0[0] == "cancelled" }) {
            throw CommandFailed(description: "a job \(failed[0]): \(failed[1])")
        }
        if rows.count == ids.count, rows.allSatisfy({ states.contains($0[0]) }) { return }
        usleep(200_000)
    }
    throw CommandFailed(description: "jobs \(list) did not reach \(states) in \(timeout) s")
}

/// One real farm run (the real agent, really encoding) of `source`; its accepted outputs become the replay cache.
@MainActor
func prime(_ source: String, rungs: String?, name: String) throws -> ReplayCache {
    let folder = work.appendingPathComponent("out/prime-\(name)")
    let started = ContinuousClock.now
    let job = try submit(source, output: folder.path, rungs: rungs)
    let agent = try spawn(
        [
            farm, "agent", "--coordinator", "127.0.0.1:\(port)", "--slots", "2", "--secret", secret, "--name",
            "prime-\(name)", "--work-dir", work.path, "--log-level", "warning",
        ],
        log: work.appendingPathComponent("agent-\(name).log").path
    )
    defer {
        agent.terminate()
        _ = exitStatus(of: agent)
    }
    try waitForJobs([job], states: ["ready"])
    log("primed \(name) with a real encode in \(String(format: "%.1f", (ContinuousClock.now - started).seconds)) s")
    var inits: [String: Output] = [:]
    for row in try database.rows("SELECT rendition, sha256, bytes, path FROM init_segments WHERE job_id = \(job)") {
        inits[row[0]] = Output(
            rendition: row[0],
            role: "init",
            segmentIndex: nil,
            path: row[3],
            bytes: Int64(row[2])!,
            sha256: row[1],
            startPTS: 0,
            duration: 0,
            frames: 0,
            timeBase: Rational(1, 1)
        )
    }
    var outputs: [String: [Output]] = [:]
    for row in try database.rows(
        """
        SELECT coalesce('video-' || t.chunk_index, 'audio'), s.rendition, s.index, s.path, s.bytes, s.sha256,
               s.start_pts, s.duration, s.timebase_num, s.timebase_den, s.frames
        FROM segments s JOIN tasks t ON t.id = s.task_id WHERE s.job_id = \(job) ORDER BY s.rendition, s.index
        """
    ) {
        let timeBase = Rational(Int32(row[8])!, Int32(row[9])!)
        var list = outputs[row[0]] ?? []
        if !list.contains(where: { $0.rendition == row[1] }), var initSegment = inits[row[1]] {
            initSegment.timeBase = timeBase
            list.append(initSegment)
        }
        list.append(
            Output(
                rendition: row[1],
                role: "segment",
                segmentIndex: Int(row[2]),
                path: row[3],
                bytes: Int64(row[4])!,
                sha256: row[5],
                startPTS: Int64(row[6])!,
                duration: Int64(row[7])!,
                frames: Int(row[10])!,
                timeBase: timeBase
            )
        )
        outputs[row[0]] = list
    }
    var files: [String: [ReplayCache.File]] = [:]
    for (key, list) in outputs {
        files[key] = try list.map { output in
            let data = try Data(contentsOf: folder.appendingPathComponent(output.path))
            return ReplayCache.File(output: output, bytes: ByteBuffer(bytes: data))
        }
    }
    return ReplayCache(files: files)
}

struct RunResult: Codable {
    var name: String
    var slots: Int
    var jobs: Int
    var tasks: Int
    var accepted: Int
    var rejected: Int
    var firstRejections: [String]
    var wallSeconds: Double
    var acceptedPerSecond: Double
    var leaseP50Ms: Double
    var leaseP99Ms: Double
    var simulatedEncodeSeconds: Double
    var idealWallSeconds: Double
    var listSchedulingWallSeconds: Double
    var efficiency: Double
    var efficiencyAgainstListScheduling: Double
    var coordinatorCPUSeconds: Double
    var coordinatorCPUMsPerTask: Double
    var postgresCPUSeconds: Double
    var stitchDrainSeconds: Double
    var coordinatorCPUWithStitchSeconds: Double
    var sourceBytesPerSecond: Double
    var segmentBytesPerSecond: Double
    var submitToReadySeconds: Double
    var profile: [String]?
    /// PostgreSQL's busiest statements over the run: total ms | calls | mean ms | statement.
    var postgresStatements: [String]?
}

/// Submits `jobs` jobs, waits until they are planned, then lets `slots` simulated agents work them off.
@MainActor
func scenario(
    name: String,
    source: String,
    rungs: String?,
    jobs: Int,
    slots: Int,
    cache: ReplayCache,
    targetSeconds: Double,
    profile: Bool
) async throws -> RunResult {
    let submitted = ContinuousClock.now
    var ids: [Int64] = []
    for index in 0..<jobs {
        ids.append(
            try submit(source, output: work.appendingPathComponent("out/\(name)-job\(index)").path, rungs: rungs)
        )
    }
    try waitForJobs(ids, states: ["running", "stitching", "ready"])
    let list = ids.map(String.init).joined(separator: ",")
    let specs = try database.rows("SELECT spec FROM tasks WHERE job_id IN (\(list)) ORDER BY job_id, id").map {
        try JSONDecoder().decode(TaskSpec.self, from: Data($0[0].utf8))
    }
    let costs = specs.map { simulatedCost($0, cache: cache) }
    // The scale factor: with no coordinator overhead at all, the run would take `targetSeconds` (a job of fewer
    // tasks than slots, like the 1080p one, then still takes that long rather than its longest task's share).
    let secondsPerCost = targetSeconds / listSchedulingMakespan(costs, slots: slots)
    let durations = costs.map { $0 * secondsPerCost }
    let state = RunState(expected: specs.count)
    log("\(name): \(jobs) jobs, \(specs.count) tasks, \(slots) simulated slots")

    let coordinatorBefore = cpuSeconds(pid: coordinator.processIdentifier)
    let postgresBefore = postgresCPUSeconds(postmaster: postmaster)
    _ = try? database.rows("SELECT pg_stat_statements_reset()")
    let started = ContinuousClock.now
    var perf: Process?
    let perfData = work.appendingPathComponent("perf-\(name).data").path
    if profile {
        // perf records the coordinator for as long as its workload, a `sleep`, runs (`spawn` clears the signal
        // mask this program's threads would pass on, so perf hears the sleep end).
        perf = try spawn(
            [
                "perf", "record", "-g", "-o", perfData, "-p", "\(coordinator.processIdentifier)", "--",
                "sleep", "\(Int(max(5, targetSeconds * 0.6)))",
            ],
            log: work.appendingPathComponent("perf-\(name).log").path
        )
    }
    let agents = (0..<slots).map { slot in
        SimulatedAgent(
            name: "sim-\(name)-\(slot)",
            host: "127.0.0.1",
            port: port,
            secret: secret,
            secondsPerCost: secondsPerCost,
            cache: cache,
            state: state
        )
    }
    let deadline = max(600, targetSeconds * 10)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for agent in agents {
            group.addTask { try await agent.run() }
        }
        // A failed job leaves its tasks unleasable, and the agents would wait for them for ever: a watcher ends the
        // run with the job's error instead, or after `deadline`.
        group.addTask {
            let watched = ContinuousClock.now
            while !state.isOver {
                try await Task.sleep(for: .seconds(1))
                let rows = try database.rows("SELECT id, state, coalesce(error, '') FROM jobs WHERE id IN (\(list))")
                let failure =
                    rows.first { $0[1] == "failed" || $0[1] == "cancelled" }
                    .map { "job \($0[0]) \($0[1]): \($0[2])" }
                    ?? ((ContinuousClock.now - watched).seconds > deadline
                        ? "not every result was in after \(Int(deadline)) s" : nil)
                if let failure {
                    state.abandon()
                    throw CommandFailed(description: "\(name): \(failure)")
                }
            }
        }
        try await group.waitForAll()
    }
    let counts = state.counts.withLock { $0 }
    let wall = ((counts.lastAccepted ?? .now) - started).seconds
    let coordinatorCPU = cpuSeconds(pid: coordinator.processIdentifier) - coordinatorBefore
    let postgresCPU = postgresCPUSeconds(postmaster: postmaster) - postgresBefore
    let statements = try? database.rows(
        """
        SELECT round(total_exec_time)::bigint, calls, round(mean_exec_time::numeric, 2),
               left(regexp_replace(query, '\\s+', ' ', 'g'), 150)
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 8
        """
    ).map { $0.joined(separator: " | ") }
    let drainStarted = ContinuousClock.now
    try waitForJobs(ids, states: ["ready"])
    let drain = (ContinuousClock.now - drainStarted).seconds
    let withStitch = cpuSeconds(pid: coordinator.processIdentifier) - coordinatorBefore
    var top: [String]?
    if let perf {
        _ = exitStatus(of: perf)
        func report(_ sort: String, _ limit: Int) -> [String] {
            let text =
                (try? shell([
                    "perf", "report", "-i", perfData, "--stdio", "--no-children", "-g", "none",
                    "--sort", sort, "--percent-limit", "0.5",
                ])) ?? ""
            return text.split(separator: "\n").filter { $0.contains("%") && !$0.hasPrefix("#") }.prefix(limit).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
        }
        top = ["by shared object:"] + report("dso", 12) + ["by symbol:"] + report("dso,symbol", 25)
    }
    let ideal = durations.reduce(0, +) / Double(slots)
    let bound = listSchedulingMakespan(durations, slots: slots)
    return RunResult(
        name: name,
        slots: slots,
        jobs: jobs,
        tasks: specs.count,
        accepted: counts.accepted,
        rejected: counts.rejected.count,
        firstRejections: Array(counts.rejected.prefix(3)),
        wallSeconds: wall,
        acceptedPerSecond: Double(counts.accepted) / wall,
        leaseP50Ms: percentile(counts.leaseLatencies, 50) * 1000,
        leaseP99Ms: percentile(counts.leaseLatencies, 99) * 1000,
        simulatedEncodeSeconds: counts.simulatedSeconds,
        idealWallSeconds: ideal,
        listSchedulingWallSeconds: bound,
        efficiency: ideal / wall,
        efficiencyAgainstListScheduling: bound / wall,
        coordinatorCPUSeconds: coordinatorCPU,
        coordinatorCPUMsPerTask: coordinatorCPU / Double(specs.count) * 1000,
        postgresCPUSeconds: postgresCPU,
        stitchDrainSeconds: drain,
        coordinatorCPUWithStitchSeconds: withStitch,
        sourceBytesPerSecond: Double(counts.bytesOut) / wall,
        segmentBytesPerSecond: Double(counts.bytesIn) / wall,
        submitToReadySeconds: (ContinuousClock.now - submitted).seconds,
        profile: top,
        postgresStatements: statements
    )
}

var runs: [RunResult] = []
var failures: [String] = []
/// The report so far: written after every scenario, so a run that stops (or a scenario that fails) keeps what it
/// measured. pgbench runs last, on a quiet database.
@MainActor
func report(pgbench: PgbenchResult?) throws {
    try writeReport(
        runs: runs,
        failures: failures,
        pgbench: pgbench,
        options: options,
        commandLine: commandLine,
        results: benchmarks.appendingPathComponent("results")
    )
}
/// Runs one scenario; a failure is recorded in the report and the next scenario still runs.
@MainActor
func measure(_ name: String, _ body: () async throws -> RunResult) async throws {
    do {
        let result = try await body()
        log(
            String(
                format: "%@: %.1f results/s, lease p50 %.1f ms p99 %.1f ms, efficiency %.1f%%",
                name,
                result.acceptedPerSecond,
                result.leaseP50Ms,
                result.leaseP99Ms,
                result.efficiency * 100
            )
        )
        runs.append(result)
    } catch {
        log("\(name) FAILED: \(error)")
        failures.append("\(name): \(error)")
        // Its jobs would hold the next scenario's slots: cancelled, so only that scenario's tasks are queued.
        let open = (try? database.rows("SELECT id FROM jobs WHERE state NOT IN ('ready', 'failed', 'cancelled')")) ?? []
        for row in open { _ = try? shell([farm, "cancel", row[0], "--database-url", databaseURL]) }
    }
    try report(pgbench: nil)
}

// A failure past this point ends the coordinator and the PostgreSQL server before the run exits: left running, a
// coordinator of a failed run went on planning and making thumbnails against the next run's database.
do {
    let source = try loopedSource(width: 426, height: 240, seconds: options.sourceSeconds)
    let cache = try prime(source, rungs: nil, name: "240p")
    for slots in options.slots {
        try await measure("n\(slots)") {
            try await scenario(
                name: "n\(slots)",
                source: source,
                rungs: nil,
                jobs: options.jobs,
                slots: slots,
                cache: cache,
                targetSeconds: options.targetSeconds,
                profile: options.profile && slots == options.slots.last
            )
        }
    }
    if options.hd {
        let hdSource = try loopedSource(
            width: 1920,
            height: 1080,
            rate: options.hdFrameRate,
            seconds: options.hdSeconds
        )
        let hdCache = try prime(hdSource, rungs: options.hdRungs, name: "1080p")
        let slots = options.slots.max() ?? 800
        try await measure("hd\(slots)") {
            try await scenario(
                name: "hd\(slots)",
                source: hdSource,
                rungs: options.hdRungs,
                jobs: 1,
                slots: slots,
                cache: hdCache,
                targetSeconds: options.targetSeconds,
                profile: false
            )
        }
    }

    coordinator.terminate()
    _ = exitStatus(of: coordinator)
    try report(pgbench: try runPgbench(database: database, quick: options.quick, work: work))
} catch {
    log("FAILED: \(error)")
    if coordinator.isRunning {
        coordinator.terminate()
        _ = exitStatus(of: coordinator)
    }
    _ = try? shell(["bash", root.appendingPathComponent("deploy/postgres.sh").path, "stop", pgDirectory])
    exit(1)
}
_ = try? shell(["bash", root.appendingPathComponent("deploy/postgres.sh").path, "stop", pgDirectory])
