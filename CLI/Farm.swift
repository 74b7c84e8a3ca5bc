import ArgumentParser
import FarmAgent
import FarmCoordinator
import FarmProtocol
import Foundation
import Logging
import PostgresNIO

@main
struct Farm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "farm",
        abstract: "A distributed video transcoding farm: GOP-aligned chunks, stateless agents, HLS out.",
        version: farmVersion,
        subcommands: [
            Transcode.self, CoordinatorCommand.self, AgentCommand.self, Submit.self, Status.self, Cancel.self,
            Verify.self, Keys.self, Agents.self, Jobs.self,
        ]
    )
}

/// Options every long-running command shares.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level?

    func makeLogger(label: String, defaultLevel: Logger.Level) -> Logger {
        let level = self.logLevel ?? defaultLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct SecretOptions: ParsableArguments {
    @Option(help: "The cluster secret agents prove they know (default: $FARM_SECRET).")
    var secret: String?

    @Option(help: "Read the cluster secret from this file.")
    var secretFile: String?

    func resolve() throws -> ClusterSecret {
        if let secret, !secret.isEmpty { return ClusterSecret(secret) }
        if let secretFile {
            guard let text = try? String(contentsOfFile: secretFile, encoding: .utf8) else {
                throw ValidationError("cannot read the secret file \(secretFile)")
            }
            return ClusterSecret(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        if let secret = ProcessInfo.processInfo.environment["FARM_SECRET"], !secret.isEmpty {
            return ClusterSecret(secret)
        }
        throw ValidationError(
            "no cluster secret: pass --secret, --secret-file or set FARM_SECRET (the same on coordinator and agents)"
        )
    }
}

struct JobOptions: ParsableArguments {
    @Option(help: "Target segment duration in seconds.")
    var segmentDuration: Double = 6

    @Option(help: "Rungs to produce, comma separated (default: every rung of the ladder up to the source height).")
    var rungs: String?

    @Option(help: "libx264 preset.")
    var preset: String = EncoderSettings.default.preset

    @Option(help: "Constant rate factor (quality; lower is better).")
    var crf: Int = EncoderSettings.default.crf

    @Option(help: "B-frames between reference frames, fmp4 only (default: 3, x264's presets' own; 0 for none).")
    var bFrames: Int?

    @Option(help: "Minimum number of chunks the video is cut into.")
    var minimumChunks: Int = 4

    @Option(help: "At most this many of the job's tasks leased at once (0: no cap).")
    var maxInFlight: Int = 0

    @Option(help: "Attempts per task before the job fails.")
    var maxAttempts: Int = 5

    @Option(help: "Segment container: fmp4 (CMAF, init.mp4 + .m4s) or ts (MPEG-TS .ts, for older players).")
    var container: SegmentContainer = .fmp4

    func settings() throws -> JobSettings {
        var encoder = EncoderSettings.default
        encoder.preset = self.preset
        encoder.crf = self.crf
        if self.container == .ts, let bFrames = self.bFrames, bFrames > 0 {
            throw ValidationError(
                "MPEG-TS segments are encoded without B-frames; use --container fmp4 for B-frames, or --b-frames 0"
            )
        }
        encoder.bFrames = self.container == .ts ? 0 : self.bFrames ?? EncoderSettings.default.bFrames
        let settings = JobSettings(
            segmentDuration: self.segmentDuration,
            rungs: self.rungs.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
            encoder: encoder,
            minimumChunks: self.minimumChunks,
            maxAttempts: self.maxAttempts,
            maxInFlight: self.maxInFlight,
            container: self.container
        )
        do {
            try settings.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return settings
    }
}

/// An error as a user should read it. PostgresNIO's errors hide the server's message from `description` (it may
/// carry data); the CLI runs on the operator's own machine, so it shows it: their `debugDescription` has the error's
/// code and, for an error the server sent, its `serverInfo` (SQLSTATE, message, detail).
func readable(_ error: any Error) -> String {
    switch error {
    case let error as PSQLError: String(reflecting: error)
    case let error as PostgresDecodingError: String(reflecting: error)
    default: "\(error)"
    }
}

/// Runs `body`, turning any error into one that prints readably.
func withReadableErrors<Result>(_ body: () async throws -> Result) async throws -> Result {
    do {
        return try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        throw ReadableError(description: readable(error))
    }
}

struct ReadableError: Error, CustomStringConvertible {
    var description: String
}

/// Parses `HOST:PORT`.
func parseAddress(_ text: String, defaultPort: Int) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":") else { return (text, defaultPort) }
    let host = String(text[..<colon])
    guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw ValidationError("\(text) is not HOST:PORT with a port from 0 to 65535")
    }
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

/// Checks an input path before anything starts, so a typo fails at once with the path in the message.
func resolveInput(_ path: String) throws -> String {
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) else {
        throw ValidationError("input \(path) does not exist")
    }
    guard !isDirectory.boolValue else { throw ValidationError("input \(path) is a folder, not a video file") }
    guard FileManager.default.isReadableFile(atPath: absolute) else {
        throw ValidationError("input \(path) is not readable")
    }
    return absolute
}

extension SegmentContainer: ExpressibleByArgument {}
