import ArgumentParser
import FarmCoordinator
import FarmProtocol
import Foundation
import Logging

/// `farm agents`: the farm's agents, seen and steered from any machine with the database (docs/operations.md).
struct Agents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the farm's agents with what each does, or drain one.",
        subcommands: [List.self, Drain.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every agent: state, slots, cores, encoders, speed (× realtime), current tasks, VA-API device."
        )

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await withJobStore(self.databaseURL, logger: Logger(label: "farm.agents")) { store in
                let agents = try await store.agents()
                guard !agents.isEmpty else {
                    print("no agent has connected yet: start one with `farm agent --coordinator HOST:PORT`")
                    return
                }
                var rows = [
                    ["NAME", "STATE", "SLOTS", "CPUS", "ENCODERS", "SPEED", "DOING", "SEEN", "VERSION", "HARDWARE"]
                ]
                for agent in agents {
                    let doing =
                        agent.tasks.isEmpty
                        ? "idle"
                        : agent.tasks.map { "job \($0.jobID) task \($0.taskID) (\($0.rendition))" }.joined(
                            separator: "; "
                        )
                    rows.append([
                        agent.name, "\(agent.state)", "\(agent.capabilities.slots)",
                        agent.capabilities.cpuCount.map(String.init) ?? "?",
                        agent.capabilities.encoders.joined(separator: ","),
                        agent.speed.map { String(format: "%.1f×", $0) } ?? "-",
                        agent.state == .gone ? "-" : doing,
                        "\(Int(-agent.lastSeen.timeIntervalSinceNow)) s ago on \(agent.coordinator ?? "?")",
                        agent.version ?? "?", Self.hardware(agent.capabilities),
                    ])
                }
                print(table(rows))
            }
        }

        static func hardware(_ capabilities: FarmMessage.Capabilities) -> String {
            if let device = capabilities.vaapiDevice { return "VA-API \(device)" }
            return "no VA-API device: \(capabilities.vaapiUnavailableReason ?? "not probed by this agent's version")"
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain an agent: it finishes the tasks it encodes, takes no more, and exits 0."
        )

        @Argument(help: "The agent's name, as `farm agents` shows it.")
        var name: String

        @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            try await withJobStore(self.databaseURL, logger: Logger(label: "farm.agents")) { store in
                guard try await store.requestDrain(name: self.name) else {
                    throw ReadableError(
                        description: "no connected agent is named \(self.name); `farm agents` lists them"
                    )
                }
                print("agent \(self.name) is draining: it finishes its tasks, then exits (`farm agents` follows it)")
            }
        }
    }
}

/// `farm jobs`: the newest jobs with their progress.
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the newest jobs: state, progress and ETA.")

    @Option(help: "Only jobs in this state: submitted, running, stitching, ready, failed or cancelled.")
    var state: JobState?

    @Option(help: "How many jobs.")
    var limit: Int = 50

    @Option(help: "PostgreSQL URL (default: $FARM_DATABASE_URL).")
    var databaseURL: String?

    func validate() throws {
        guard (1...10_000).contains(self.limit) else { throw ValidationError("--limit must be from 1 to 10000") }
    }

    func run() async throws {
        try await withJobStore(self.databaseURL, logger: Logger(label: "farm.jobs")) { store in
            var rows = [["JOB", "STATE", "PROGRESS", "ETA", "PRIORITY", "TENANT", "SOURCE"]]
            for job in try await store.jobListings(state: self.state, limit: self.limit) {
                rows.append([
                    "\(job.id)", "\(job.state)",
                    String(format: "%.0f%% (%d/%d tasks)", job.percent, job.tasksDone, job.tasksTotal),
                    job.etaSeconds.map { String(format: "%.0f s", $0) } ?? "-", "\(job.priority)", job.tenant ?? "-",
                    job.error.map { "\(job.source): \($0)" } ?? job.source,
                ])
            }
            print(table(rows))
        }
    }
}

extension JobState: ExpressibleByArgument {}

/// Rows as columns padded to their widest cell, two spaces apart.
func table(_ rows: [[String]]) -> String {
    let widths = rows.reduce(into: [Int]()) { widths, row in
        for (index, cell) in row.enumerated() {
            if index < widths.count {
                widths[index] = max(widths[index], cell.count)
            } else {
                widths.append(cell.count)
            }
        }
    }
    return rows.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
