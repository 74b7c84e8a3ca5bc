import FarmFormats
import FarmMedia
import Foundation

/// What `farm verify` can be told to do.
package struct VerificationOptions: Sendable, Equatable {
    /// Largest allowed distance between consecutive IDR frames of a rendition, in seconds.
    package var maxKeyframeInterval: Double
    /// When set, a rung whose PSNR-Y is below this (dB) fails.
    package var minimumPSNR: Double?
    /// Computing PSNR/SSIM costs a scale of every source frame per rung; tests of the other checks may skip it.
    package var measureQuality: Bool
    /// Largest allowed difference of audio duration, and of audio start relative to the video, in seconds.
    package var audioTolerance: Double

    package init(
        maxKeyframeInterval: Double = 2.0,
        minimumPSNR: Double? = nil,
        measureQuality: Bool = true,
        audioTolerance: Double = 0.05
    ) {
        self.maxKeyframeInterval = maxKeyframeInterval
        self.minimumPSNR = minimumPSNR
        self.measureQuality = measureQuality
        self.audioTolerance = audioTolerance
    }
}

/// The outcome of `farm verify`: a line per failed check, and what was measured per rung.
package struct VerificationReport: Sendable, Equatable {
    package struct Rung: Sendable, Equatable {
        package var name: String
        package var width: Int
        package var height: Int
        package var frames: Int
        package var segments: Int
        package var largestKeyframeInterval: Double?
        /// RFC 8216 peak segment bit rate of the video plus its audio group's, in bits per second.
        package var measuredPeakBitrate: Int?
        package var measuredAverageBitrate: Int?
        package var declaredBandwidth: Int?
        /// Decoded frames over the time they cover, for the check of FRAME-RATE.
        package var measuredFrameRate: Double?
        package var psnrY: Double?
        package var psnrYUV: Double?
        package var ssimY: Double?

        package init(name: String) {
            self.name = name
            self.width = 0
            self.height = 0
            self.frames = 0
            self.segments = 0
        }
    }

    package var source: String
    package var hlsDirectory: String
    /// Decoded source video frames; nil when the source was not read (the playlists failed first).
    package var sourceFrames: Int?
    package var sourceFrameRate: Double?
    package var sourceAudioDuration: Double?
    package var outputAudioDuration: Double?
    /// First audio sample's time minus the first video frame's, in the source and in the output.
    package var sourceAudioOffset: Double?
    package var outputAudioOffset: Double?
    package var rungs: [Rung] = []
    /// One line per failed check, naming the rendition, the segment or frame, and the measured values.
    package var failures: [String] = []
    /// Observations that are not failures.
    package var notes: [String] = []

    package init(source: String, hlsDirectory: String) {
        self.source = source
        self.hlsDirectory = hlsDirectory
    }

    package var passed: Bool { self.failures.isEmpty }

    /// The report as printed by `farm verify`.
    package var text: String {
        var lines = ["farm verify \(self.source) against \(self.hlsDirectory)"]
        if let frames = self.sourceFrames {
            var sourceLine = "source: \(frames) video frames"
            if let rate = self.sourceFrameRate { sourceLine += String(format: " at %.3f fps", rate) }
            if let audio = self.sourceAudioDuration { sourceLine += String(format: ", audio %.3f s", audio) }
            lines.append(sourceLine)
        }
        if !self.rungs.isEmpty {
            lines.append(
                self.pad(
                    ["rung", "size", "frames", "segments", "max key int", "peak kb/s", "BANDWIDTH"],
                    [8, 11, 7, 9, 12, 10, 10]
                )
                    + "  PSNR-Y  PSNR-YUV  SSIM-Y"
            )
            for rung in self.rungs {
                let quality = [
                    rung.psnrY.map(Self.decibels) ?? "-", rung.psnrYUV.map(Self.decibels) ?? "-",
                    rung.ssimY.map { String(format: "%.4f", $0) } ?? "-",
                ]
                lines.append(
                    self.pad(
                        [
                            rung.name, "\(rung.width)x\(rung.height)", "\(rung.frames)", "\(rung.segments)",
                            rung.largestKeyframeInterval.map { String(format: "%.3f s", $0) } ?? "-",
                            rung.measuredPeakBitrate.map { "\($0 / 1000)" } ?? "-",
                            rung.declaredBandwidth.map { "\($0 / 1000)k" } ?? "-",
                        ],
                        [8, 11, 7, 9, 12, 10, 10]
                    ) + "  " + quality[0].padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                        + quality[1].padding(toLength: 8, withPad: " ", startingAt: 0) + "  " + quality[2]
                )
            }
            if self.rungs.contains(where: { $0.psnrY != nil }) {
                lines.append(
                    "quality: PSNR-Y and (6Y+U+V)/8 PSNR-YUV from the MSE over all frames; SSIM-Y with 8x8 box windows "
                        + "every 4 samples; against the source scaled bicubic bit-exact to each rung's size"
                )
            }
        }
        if let audio = self.outputAudioDuration {
            var line = String(format: "audio: %.3f s", audio)
            if let source = self.sourceAudioDuration { line += String(format: " (source %.3f s)", source) }
            if let offset = self.outputAudioOffset {
                line += String(format: ", starts %+.3f s from the video", offset)
                if let source = self.sourceAudioOffset { line += String(format: " (source %+.3f s)", source) }
            }
            lines.append(line)
        }
        for note in self.notes { lines.append("note: \(note)") }
        if self.failures.isEmpty {
            lines.append("PASSED: every check holds")
        } else {
            lines.append("FAILED: \(self.failures.count) check(s):")
            lines.append(contentsOf: self.failures.map { "  - \($0)" })
        }
        return lines.joined(separator: "\n")
    }

    private static func decibels(_ value: Double) -> String {
        value.isInfinite ? "inf" : String(format: "%.2f", value)
    }

    private func pad(_ fields: [String], _ widths: [Int]) -> String {
        zip(fields, widths).map { field, width in
            field.count >= width ? field + " " : field.padding(toLength: width, withPad: " ", startingAt: 0)
        }.joined()
    }
}
