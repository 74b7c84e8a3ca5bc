import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// Figure 1: the whole ladder of a 1080p30 source, the farm against one ffmpeg process, runs alternating
/// (farm, ffmpeg, farm, ...) so that a slow spell of a shared machine hits both sides alike.
struct LadderBenchmark {
    let workspace: Workspace
    let farm: FarmRunner
    let runs: Int

    func run(source generated: GeneratedSource, seconds: Int, measureQuality: Bool) throws -> LadderResult {
        let info = try SourceProbe.probe(path: generated.path)
        let renditions = Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.displayHeight)
        let farmOutput = self.workspace.work.appendingPathComponent("ladder-\(seconds)s-farm").path
        let ffmpegOutput = self.workspace.work.appendingPathComponent("ladder-\(seconds)s-ffmpeg").path
        let ffmpegCommand = PlainFFmpeg.ladder(source: info, output: ffmpegOutput)
        var result = LadderResult(
            seconds: seconds,
            sourceCommands: generated.commands.map(shellQuoted),
            farm: SideRuns(command: shellQuoted(self.farm.command(source: generated.path, output: farmOutput))),
            ffmpeg: SideRuns(command: shellQuoted(ffmpegCommand))
        )
        for run in 1...self.runs {
            say("ladder \(seconds) s: farm run \(run)/\(self.runs)")
            let farmRun = try self.farm.transcode(
                source: generated.path,
                output: farmOutput,
                log: self.workspace.log("ladder-\(seconds)s-farm-\(run)")
            )
            result.farm.runs.append(farmRun)
            say("ladder \(seconds) s: ffmpeg run \(run)/\(self.runs)")
            _ = try self.workspace.freshOutput("ladder-\(seconds)s-ffmpeg")
            let ffmpegRun = try ProcessRun.run(
                ffmpegCommand,
                log: self.workspace.log("ladder-\(seconds)s-ffmpeg-\(run)")
            )
            result.ffmpeg.runs.append(ffmpegRun)
            say(
                String(
                    format: "  farm %.1f s wall %.1f s CPU; ffmpeg %.1f s wall %.1f s CPU",
                    farmRun.wallSeconds,
                    farmRun.cpuSeconds,
                    ffmpegRun.wallSeconds,
                    ffmpegRun.cpuSeconds
                )
            )
        }

        var farmPSNR: [Double] = []
        var ffmpegPSNR: [Double] = []
        if measureQuality {
            for (side, output) in [("farm", farmOutput), ("ffmpeg", ffmpegOutput)] {
                say("ladder \(seconds) s: PSNR-Y of the \(side) rungs")
                let command = PlainFFmpeg.psnrCommand(source: generated.path, output: output, renditions: renditions)
                let log = self.workspace.log("ladder-\(seconds)s-psnr-\(side)")
                _ = try ProcessRun.run(command, log: log)
                let values = PlainFFmpeg.psnrValues(log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
                guard values.count == renditions.count else {
                    throw BenchError("expected \(renditions.count) PSNR lines in \(log), found \(values.count)")
                }
                if side == "farm" { farmPSNR = values } else { ffmpegPSNR = values }
                result.psnrCommands.append(shellQuoted(command))
            }
        }
        result.rungs = renditions.enumerated().map { index, rendition in
            RungComparison(
                name: rendition.name,
                farmPSNR: farmPSNR.isEmpty ? nil : farmPSNR[index],
                ffmpegPSNR: ffmpegPSNR.isEmpty ? nil : ffmpegPSNR[index],
                farmBytes: folderBytes("\(farmOutput)/\(rendition.name)"),
                ffmpegBytes: folderBytes("\(ffmpegOutput)/\(rendition.name)")
            )
        }
        return result
    }
}

/// The bytes of every file in a folder (a rung's init segment and media segments; its playlist is a few hundred).
func folderBytes(_ path: String) -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.filter { !$0.hasSuffix(".m3u8") }.reduce(0) { total, name in
        let attributes = try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")
        return total + ((attributes?[.size] as? NSNumber)?.intValue ?? 0)
    }
}
