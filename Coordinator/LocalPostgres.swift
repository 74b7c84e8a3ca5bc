import Foundation

/// A PostgreSQL server farm manages itself for the all-in-one mode: created on first use under a folder of the
/// user's, reached through a unix socket only (no port to collide with), and stopped again by whoever started it.
public struct LocalPostgres: Sendable {
    public let stateDirectory: String
    public var dataDirectory: String { self.stateDirectory + "/data" }
    public var socketDirectory: String { self.stateDirectory + "/run" }
    public var logFile: String { self.stateDirectory + "/server.log" }
    public static let databaseName = "farm"

    /// `$FARM_STATE_DIR`, else `/var/lib/farm/postgres` for root (the postgres user cannot enter /root), else
    /// `~/.local/share/farm/postgres`.
    public static var defaultStateDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["FARM_STATE_DIR"], !configured.isEmpty {
            return configured + "/postgres"
        }
        if geteuid() == 0 { return "/var/lib/farm/postgres" }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.local/share/farm/postgres"
    }

    public init(stateDirectory: String = LocalPostgres.defaultStateDirectory) {
        self.stateDirectory = stateDirectory
    }

    public var url: DatabaseURL {
        DatabaseURL(socketDirectory: self.socketDirectory, database: Self.databaseName)
    }

    /// Starts the server unless it runs already. Returns true when this call started it.
    @discardableResult
    public func start() throws -> Bool {
        let binaries = try Self.binaryDirectory()
        let asRoot = geteuid() == 0
        try FileManager.default.createDirectory(atPath: self.socketDirectory, withIntermediateDirectories: true)
        if asRoot {
            try Self.run("/bin/chown", ["-R", "postgres:postgres", self.stateDirectory])
        }
        if !FileManager.default.fileExists(atPath: self.dataDirectory + "/PG_VERSION") {
            try self.runPostgresTool(
                binaries + "/initdb",
                [
                    "-D", self.dataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8",
                    "--no-sync",
                ],
                asRoot: asRoot
            )
        }
        let running =
            (try? self.runPostgresTool(binaries + "/pg_ctl", ["status", "-D", self.dataDirectory], asRoot: asRoot))
            != nil
        if !running {
            try self.runPostgresTool(
                binaries + "/pg_ctl",
                [
                    "-D", self.dataDirectory, "-l", self.logFile, "-w", "-t", "30", "-o",
                    "-k \(self.socketDirectory) -c listen_addresses='' -c synchronous_commit=off", "start",
                ],
                asRoot: asRoot
            )
        }
        // CREATE DATABASE fails when it exists; that is the only failure tolerated here.
        _ = try? self.runPostgresTool(
            binaries + "/createdb",
            ["-h", self.socketDirectory, "-U", "postgres", Self.databaseName],
            asRoot: asRoot
        )
        return !running
    }

    public func stop() {
        guard let binaries = try? Self.binaryDirectory() else { return }
        _ = try? self.runPostgresTool(
            binaries + "/pg_ctl",
            ["-D", self.dataDirectory, "-m", "fast", "-w", "stop"],
            asRoot: geteuid() == 0
        )
    }

    /// PostgreSQL's server binaries (Debian keeps them out of PATH), the newest version installed.
    static func binaryDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted()
        for version in versions.reversed()
        where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw ConfigurationError(
            "PostgreSQL server binaries not found under \(root): install them with `apt-get install postgresql` "
                + "(or `make deps`), or pass --database-url to use an existing server"
        )
    }

    private func runPostgresTool(_ tool: String, _ arguments: [String], asRoot: Bool) throws {
        // initdb and postgres refuse to run as root: run them as the postgres user.
        if asRoot {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    /// Runs a tool through system(3), its output captured in a file. Not Foundation's Process: `pg_ctl start` leaves
    /// a server running that inherits the tool's descriptors, and `Process.waitUntilExit` was seen waiting on it
    /// forever.
    private static func run(_ executable: String, _ arguments: [String]) throws {
        let outputPath = NSTemporaryDirectory() + "farm-postgres-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let command = ([executable] + arguments).map(self.shellQuoted).joined(separator: " ")
        let status = system("cd / && \(command) > \(self.shellQuoted(outputPath)) 2>&1 < /dev/null")
        guard status == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            throw ConfigurationError(
                "\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed: "
                    + text.trimmingCharacters(in: .whitespacesAndNewlines)
            )
        }
    }

    /// One shell word: single-quoted, with embedded single quotes closed, escaped and reopened.
    package static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
