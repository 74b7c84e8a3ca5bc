import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What one whole process cost, from `wait4`'s resource usage: the process and every descendant it waited for.
struct Measurement: Codable, Sendable {
    var wallSeconds: Double
    var userSeconds: Double
    var systemSeconds: Double
    /// The largest resident set of the process or of one of its waited-for descendants (`ru_maxrss`), KiB.
    var peakMemoryKiB: Int
    /// CPU spent meanwhile by processes outside the tree (the PostgreSQL server the farm uses), when counted.
    var outsideCPUSeconds: Double = 0

    var cpuSeconds: Double { self.userSeconds + self.systemSeconds + self.outsideCPUSeconds }
}

/// Runs a command to completion and measures it. `posix_spawn` and `wait4` rather than `Process`, because
/// Foundation's `Process` does not report resource usage and `/usr/bin/time` would add a process to the tree.
enum ProcessRun {
    /// Runs `arguments` (the first found on PATH), its output and errors into `log` (errors into `errors` when
    /// given), and returns what it cost. `poll`, when given, is called every 50 ms while the process runs, with the
    /// seconds since it started.
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        log: String,
        errors: String? = nil,
        poll: ((Double) -> Void)? = nil
    ) throws -> Measurement {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }

        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        var pid: pid_t = 0
        let started = ContinuousClock.now
        let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw BenchError("cannot start \(arguments[0]): \(String(cString: strerror(spawned))); is it installed?")
        }
        var status: Int32 = 0
        var usage = rusage()
        while true {
            let waited = wait4(pid, &status, poll == nil ? 0 : WNOHANG, &usage)
            if waited == pid { break }
            if waited < 0, errno != EINTR {
                throw BenchError("wait4 on \(arguments[0]) failed: \(String(cString: strerror(errno)))")
            }
            if let poll {
                poll((ContinuousClock.now - started).seconds)
                usleep(50_000)
            }
        }
        let wall = (ContinuousClock.now - started).seconds
        // WIFEXITED / WEXITSTATUS are macros Swift does not import.
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        guard signal == 0, code == 0 else {
            throw BenchError(
                "\(shellQuoted(arguments)) "
                    + (signal != 0 ? "was killed by signal \(signal)" : "exited with \(code)")
                    + "; its output is in \(log)"
            )
        }
        return Measurement(
            wallSeconds: wall,
            userSeconds: Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
            systemSeconds: Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6,
            peakMemoryKiB: usage.ru_maxrss
        )
    }

    /// Runs a command that must succeed and returns what it printed (for short queries such as `ffmpeg -version`).
    static func output(_ arguments: [String]) throws -> String {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("farm-bench-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: log) }
        _ = try self.run(arguments, log: log)
        return (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    }
}

/// The CPU a server outside the measured process tree spent: its main process's own and reaped children's time, plus
/// every live child's, read from `/proc` (PostgreSQL serves each connection in a child of the postmaster).
struct ServerCPU {
    let mainPID: Int32

    /// The postmaster of the PostgreSQL cluster in `dataDirectory` (line 1 of `postmaster.pid`).
    init(postgresDataDirectory dataDirectory: String) throws {
        let text = try String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8)
        guard let first = text.split(separator: "\n").first, let pid = Int32(first) else {
            throw BenchError("cannot read the postmaster's pid in \(dataDirectory)/postmaster.pid")
        }
        self.mainPID = pid
    }

    /// Seconds of CPU so far; the difference of two readings is what the server spent between them.
    func seconds() -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries where entry.first?.isNumber == true {
            guard let fields = Self.statFields(pid: entry), fields.count > 14 else { continue }
            // After the command's closing parenthesis: 0 state, 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime.
            let pid = Int32(entry)
            if pid == self.mainPID {
                total += (fields[11...14].compactMap { Double($0) }).reduce(0, +) / ticks
            } else if Int32(fields[1]) == self.mainPID {
                total += (fields[11...12].compactMap { Double($0) }).reduce(0, +) / ticks
            }
        }
        return total
    }

    private static func statFields(pid: String) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}

extension Duration {
    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// A command as one would type it in a POSIX shell, for the report.
func shellQuoted(_ arguments: [String]) -> String {
    arguments.map { argument in
        let safe = argument.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+%@".contains($0) }
        return safe && !argument.isEmpty ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }.joined(separator: " ")
}
