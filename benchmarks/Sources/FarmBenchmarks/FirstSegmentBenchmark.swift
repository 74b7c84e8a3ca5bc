import FarmFormats
import FarmMedia
import Foundation

/// Figure 2: how soon a player could start. The output folder is polled every 50 ms for the moment when every
/// rendition (each video rung and the audio) has a media playlist naming a segment that exists.
struct FirstSegmentBenchmark {
    let workspace: Workspace
    let farm: FarmRunner

    func run(source generated: GeneratedSource, minutes: Int, height: Int) throws -> FirstSegmentResult {
        let info = try SourceProbe.probe(path: generated.path)
        let renditions =
            Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.displayHeight)
            .map(\.name) + ["audio"]
        let farmOutput = self.workspace.work.appendingPathComponent("first-segment-farm").path
        let ffmpegOutput = self.workspace.work.appendingPathComponent("first-segment-ffmpeg").path
        // The target is stated for two agents: said on the command line, whatever the default becomes.
        let extra = ["--agents", "2"]

        say("first segment: farm, \(minutes) min of \(height)p")
        var farmFirst: Double?
        let farmRun = try self.farm.transcode(
            source: generated.path,
            output: farmOutput,
            extra: extra,
            log: self.workspace.log("first-segment-farm")
        ) { elapsed in
            if farmFirst == nil, Self.playable(farmOutput, renditions) { farmFirst = elapsed }
        }

        say("first segment: ffmpeg, \(minutes) min of \(height)p")
        let ffmpegCommand = PlainFFmpeg.ladder(source: info, output: ffmpegOutput)
        _ = try self.workspace.freshOutput("first-segment-ffmpeg")
        var ffmpegFirst: Double?
        let ffmpegRun = try ProcessRun.run(ffmpegCommand, log: self.workspace.log("first-segment-ffmpeg")) {
            elapsed in
            if ffmpegFirst == nil, Self.playable(ffmpegOutput, renditions) { ffmpegFirst = elapsed }
        }
        return FirstSegmentResult(
            minutes: minutes,
            height: height,
            sourceCommands: generated.commands.map(shellQuoted),
            farm: .init(
                command: shellQuoted(self.farm.command(source: generated.path, output: farmOutput, extra: extra)),
                firstPlayable: farmFirst,
                wall: farmRun.wallSeconds
            ),
            ffmpeg: .init(command: shellQuoted(ffmpegCommand), firstPlayable: ffmpegFirst, wall: ffmpegRun.wallSeconds)
        )
    }

    /// True when every rendition's `playlist.m3u8` names a segment that is in its folder.
    static func playable(_ output: String, _ renditions: [String]) -> Bool {
        renditions.allSatisfy { name in
            let folder = "\(output)/\(name)"
            guard let playlist = try? String(contentsOfFile: "\(folder)/playlist.m3u8", encoding: .utf8) else {
                return false
            }
            guard let first = playlist.split(separator: "\n").first(where: { !$0.hasPrefix("#") && !$0.isEmpty })
            else { return false }
            return FileManager.default.fileExists(atPath: "\(folder)/\(first.trimmingCharacters(in: .whitespaces))")
        }
    }
}
