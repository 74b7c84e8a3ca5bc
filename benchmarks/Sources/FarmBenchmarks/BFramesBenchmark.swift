import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// Figure 4: what B-frames would save. Each rung of the default ladder is encoded as one continuous stream at CRF
/// 19, 23, 27 and 31 with the farm's encoder options (`Media/FarmMedia/ChunkEncoder.swift`: preset, an IDR every
/// 2 s, closed GOPs, no scene cuts) but without the rungs' rate caps (a capped point's rate is the cap's, whatever
/// the coding, which makes a curve flat and its delta meaningless), once with B-frames off (`bframes=0`) and once
/// with the preset's own; then PSNR-Y against the source scaled by the same scaler, and the Bjøntegaard delta rate
/// of "on" against "off" (negative: B-frames need that much less rate at equal PSNR).
struct BFramesBenchmark {
    let workspace: Workspace
    static let crfs = [19, 23, 27, 31]

    func run(source generated: GeneratedSource, name: String, about: String) throws -> BFramesSource {
        let info = try SourceProbe.probe(path: generated.path)
        let renditions = Ladder.renditions(displayWidth: info.displayWidth, displayHeight: info.displayHeight)
        var result = BFramesSource(
            name: name,
            about: about,
            seconds: info.durationSeconds,
            sourceCommands: generated.commands.map(shellQuoted)
        )
        var points: [Bool: [[RatePoint]]] = [false: renditions.map { _ in [] }, true: renditions.map { _ in [] }]
        for bFrames in [false, true] {
            for crf in Self.crfs {
                let label = "bframes-\(name)-\(bFrames ? "on" : "off")-crf\(crf)"
                let folder = try self.workspace.freshOutput(label)
                let files = renditions.map { "\(folder)/\($0.name).mp4" }
                say("B-frames, \(name): \(bFrames ? "on" : "off"), CRF \(crf)")
                let encode = Self.encodeCommand(
                    source: info,
                    renditions: renditions,
                    crf: crf,
                    bFrames: bFrames,
                    outputs: files
                )
                _ = try ProcessRun.run(encode, log: self.workspace.log(label))
                let measure = PlainFFmpeg.psnrCommand(
                    source: generated.path,
                    inputs: zip(renditions, files).map { ($0, $1) }
                )
                let log = self.workspace.log(label + "-psnr")
                _ = try ProcessRun.run(measure, log: log)
                let values = PlainFFmpeg.psnrValues(log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
                guard values.count == renditions.count else {
                    throw BenchError("expected \(renditions.count) PSNR lines in \(log), found \(values.count)")
                }
                for index in renditions.indices {
                    let bytes =
                        (try? FileManager.default.attributesOfItem(atPath: files[index])[.size] as? NSNumber)??
                        .intValue ?? 0
                    points[bFrames]![index].append(
                        RatePoint(
                            crf: crf,
                            kilobitsPerSecond: Double(bytes) * 8 / 1000 / max(info.durationSeconds, 1e-9),
                            psnr: values[index]
                        )
                    )
                }
                if crf == Self.crfs[1] {
                    if bFrames {
                        result.onCommand = shellQuoted(encode)
                    } else {
                        result.offCommand = shellQuoted(encode)
                    }
                    result.psnrCommand = shellQuoted(measure)
                }
            }
        }
        result.rungs = renditions.enumerated().map { index, rendition in
            let off = points[false]![index]
            let on = points[true]![index]
            return BFramesRung(name: rendition.name, off: off, on: on, bdRate: BjontegaardDelta.rate(off, on))
        }
        return result
    }

    /// One ffmpeg process: the source decoded once, scaled to every rung, each encoded to its own MP4 with the
    /// farm's options at `crf`, B-frames as the preset has them or off.
    static func encodeCommand(
        source: SourceInfo,
        renditions: [RenditionSpec],
        crf: Int,
        bFrames: Bool,
        outputs: [String]
    ) -> [String] {
        let settings = EncoderSettings.default
        let frameRate = source.video.frameRate.doubleValue
        var graph = "[0:v]split=\(renditions.count)" + renditions.indices.map { "[s\($0)]" }.joined()
        for (index, rendition) in renditions.enumerated() {
            graph += ";[s\(index)]scale=\(rendition.width):\(rendition.height)[v\(index)]"
        }
        var arguments = ["ffmpeg", "-hide_banner", "-y", "-i", source.path, "-filter_complex", graph]
        for index in renditions.indices {
            arguments += ["-map", "[v\(index)]", "-an"]
            arguments += [
                "-c:v", settings.codec, "-preset", settings.preset, "-crf", "\(crf)", "-pix_fmt", "yuv420p",
                "-g", "\(Int((settings.maxKeyframeInterval * frameRate).rounded(.down)))",
                "-force_key_frames", "expr:gte(t,n_forced*\(Int(settings.maxKeyframeInterval)))", "-forced-idr", "1",
            ]
            arguments +=
                bFrames
                ? ["-x264-params", "scenecut=0:open-gop=0"]
                : [
                    "-bf", "0", "-x264-params", "scenecut=0:open-gop=0:bframes=0",
                ]
            arguments.append(outputs[index])
        }
        return arguments
    }
}

/// The Bjøntegaard delta rate (VCEG-M33): log-rate fitted as a cubic in PSNR through each curve's four points, the
/// fits' mean difference over the PSNR range both curves cover, as a percentage of rate.
enum BjontegaardDelta {
    /// Nil when a curve's PSNR does not rise with its rate (a rung held at its rate cap, or a picture so flat that
    /// every CRF gives the same quality): a cubic through such points says nothing.
    static func rate(_ reference: [RatePoint], _ test: [RatePoint]) -> Double? {
        func rises(_ points: [RatePoint]) -> Bool {
            let sorted = points.sorted { $0.kilobitsPerSecond < $1.kilobitsPerSecond }
            return zip(sorted, sorted.dropFirst()).allSatisfy {
                $1.kilobitsPerSecond > $0.kilobitsPerSecond * 1.02 && $1.psnr > $0.psnr + 0.05
            }
        }
        guard reference.count == 4, test.count == 4, rises(reference), rises(test),
            let a = self.cubic(reference.map { ($0.psnr, log10($0.kilobitsPerSecond)) }),
            let b = self.cubic(test.map { ($0.psnr, log10($0.kilobitsPerSecond)) })
        else { return nil }
        let low = max(reference.map(\.psnr).min()!, test.map(\.psnr).min()!)
        let high = min(reference.map(\.psnr).max()!, test.map(\.psnr).max()!)
        guard high > low else { return nil }
        func integral(_ c: [Double], _ x: Double) -> Double {
            c[0] * x + c[1] * x * x / 2 + c[2] * x * x * x / 3 + c[3] * x * x * x * x / 4
        }
        let difference = (integral(b, high) - integral(b, low) - integral(a, high) + integral(a, low)) / (high - low)
        return (pow(10, difference) - 1) * 100
    }

    /// The cubic c0 + c1 x + c2 x² + c3 x³ through four points (Gaussian elimination with partial pivoting).
    static func cubic(_ points: [(x: Double, y: Double)]) -> [Double]? {
        var m = points.map { [1, $0.x, $0.x * $0.x, $0.x * $0.x * $0.x, $0.y] }
        for column in 0..<4 {
            guard let pivot = (column..<4).max(by: { abs(m[$0][column]) < abs(m[$1][column]) }),
                abs(m[pivot][column]) > 1e-12
            else { return nil }
            m.swapAt(column, pivot)
            for row in 0..<4 where row != column {
                let factor = m[row][column] / m[column][column]
                for k in column..<5 { m[row][k] -= factor * m[column][k] }
            }
        }
        return (0..<4).map { m[$0][4] / m[$0][$0] }
    }
}
