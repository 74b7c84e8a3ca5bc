import FarmCoordinator
import Foundation
import Logging

/// Follows a job until it ends, drawing one progress line: chunks done, speed as × realtime, ETA.
struct JobProgress {
    let store: JobStore
    let jobID: Int64
    let started = ContinuousClock.now

    func follow() async throws -> JobStatus {
        let interactive = isatty(STDERR_FILENO) != 0
        var lastPrinted = ContinuousClock.now - .seconds(60)
        while true {
            guard let status = try await self.store.status(jobID: self.jobID) else {
                throw ConfigurationError("job \(self.jobID) does not exist")
            }
            let elapsed = (ContinuousClock.now - self.started).seconds
            var line = "job \(status.id) \(status.state)"
            if status.tasksTotal > 0 {
                line += " · tasks \(status.tasksDone)/\(status.tasksTotal)"
            }
            if let duration = status.durationSeconds, duration > 0, elapsed > 0 {
                let speed = status.secondsDone / elapsed
                line += String(format: " · %.0f/%.0f s of video · %.2f× realtime", status.secondsDone, duration, speed)
                if speed > 0, status.secondsDone < duration {
                    line += String(format: " · ETA %.0f s", (duration - status.secondsDone) / speed)
                }
            }
            let finished = status.state.isEnded
            if interactive {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (finished ? "\n" : "")).utf8))
            } else if finished || ContinuousClock.now - lastPrinted > .seconds(5) {
                FileHandle.standardError.write(Data((line + "\n").utf8))
                lastPrinted = .now
            }
            if finished { return status }
            try await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// What a finished job produced, for the summary the CLI prints.
enum OutputSummary {
    static func describe(outputDirectory: String, wallSeconds: Double, mediaSeconds: Double?) -> String {
        let folder = URL(fileURLWithPath: outputDirectory)
        var lines = ["output: \(folder.appendingPathComponent("master.m3u8").path)"]
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted {
            (Int($0.dropLast()) ?? Int.max, $0) < (Int($1.dropLast()) ?? Int.max, $1)
        }
        for entry in entries where !entry.hasPrefix(".") {
            let sub = folder.appendingPathComponent(entry)
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: sub.path) else { continue }
            let segments = files.filter { $0.hasSuffix(".m4s") || $0.hasSuffix(".ts") }
            let bytes = files.reduce(Int64(0)) { total, name in
                let attributes = try? FileManager.default.attributesOfItem(
                    atPath: sub.appendingPathComponent(name).path
                )
                return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
            }
            lines.append(String(format: "  %-6@ %4d segments  %8.2f MB", entry, segments.count, Double(bytes) / 1e6))
        }
        var timing = String(format: "wall time %.1f s", wallSeconds)
        if let mediaSeconds, wallSeconds > 0 {
            timing += String(format: " for %.1f s of video: %.2f× realtime", mediaSeconds, mediaSeconds / wallSeconds)
        }
        lines.append(timing)
        return lines.joined(separator: "\n")
    }
}
