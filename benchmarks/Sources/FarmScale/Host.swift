import Foundation

// Processes, psql and /proc: everything FarmScale does outside its own simulated agents.

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command to its end and returns its standard output; a non-zero exit throws with its standard error.
@discardableResult
func shell(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    // Output to files, not pipes: a daemon the command starts (deploy/postgres.sh's server) inherits them and would
    // hold a pipe open for ever; neither can a full pipe stall the command.
    let base = NSTemporaryDirectory() + "farm-scale-\(UUID().uuidString)"
    for suffix in [".out", ".err"] { _ = FileManager.default.createFile(atPath: base + suffix, contents: nil) }
    defer { for suffix in [".out", ".err"] { try? FileManager.default.removeItem(atPath: base + suffix) } }
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    try process.run()
    let status = exitStatus(of: process)
    guard status == 0 else {
        let error = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        throw CommandFailed(
            description: "\(arguments.joined(separator: " ")) exited with \(status): "
                + String(error.suffix(2000))
        )
    }
    return (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
}

/// Waits for `process` with `waitpid`. Foundation's `waitUntilExit` can wait for ever in this async top-level
/// program: a child that had exited stayed `<defunct>`, never reaped, and FarmScale hung before its first scenario.
/// When Foundation reaped the child first (`ECHILD`), its own record of the status is used.
func exitStatus(of process: Process) -> Int32 {
    var status: Int32 = 0
    while true {
        let result = waitpid(process.processIdentifier, &status, 0)
        if result == process.processIdentifier { break }
        if result == -1, errno == EINTR { continue }
        process.waitUntilExit()
        return process.terminationStatus
    }
    // WIFEXITED / WEXITSTATUS, WIFSIGNALED / WTERMSIG, which Swift does not import.
    return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

/// Starts a long-running process with its output in a log file.
func spawn(_ arguments: [String], log: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // A child inherits the spawning thread's signal mask, and this program's threads block SIGCHLD, SIGINT and
    // SIGTERM: `perf record -- sleep N` then never heard its workload end and recorded for ever (a 6-minute stall
    // of `make bench` at 800 slots). Python clears the mask before it becomes the program.
    process.arguments =
        [
            "python3", "-c",
            "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])",
            "env",
        ] + arguments
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

struct Database {
    let url: String

    /// Rows of `query`, fields split on `|`.
    @discardableResult
    func rows(_ query: String) throws -> [[String]] {
        try shell(["psql", self.url, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query])
            .split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    }

    func value(_ query: String) throws -> String { try self.rows(query).first?.first ?? "" }
}

/// CPU seconds a process used (user + system), from /proc/PID/stat; `children` adds its waited-for children's.
func cpuSeconds(pid: Int32, children: Bool = false) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command name: state is field 3, so utime (14) is index 11 here.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
    var total = field(14) + field(15)
    if children { total += field(16) + field(17) }
    return total / ticks
}

func parentPID(of pid: Int32) -> Int32? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return Int32(fields[1])
}

/// The PostgreSQL server's CPU: the postmaster, its finished children, and every live backend.
func postgresCPUSeconds(postmaster: Int32) -> Double {
    var total = cpuSeconds(pid: postmaster, children: true)
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
        guard let pid = Int32(entry), parentPID(of: pid) == postmaster else { continue }
        total += cpuSeconds(pid: pid)
    }
    return total
}
