import FarmFormats
import FarmMedia
import Foundation

/// The checks of `farm verify` over measured values. Pure: each takes what was measured and returns failure lines
/// (empty when the check holds), so every rule is tested without files. Times are seconds.
package enum VerificationChecks {
    /// What was measured of one segment of one rendition.
    package struct SegmentMeasurement: Sendable, Equatable {
        package var uri: String
        /// Presentation times of the segment's frames, relative to the rendition's first frame, sorted.
        package var frameTimes: [Double]
        /// True when the segment's first packet (decode order) is an IDR; nil when it could not be told.
        package var startsWithIDR: Bool?

        package init(uri: String, frameTimes: [Double], startsWithIDR: Bool?) {
            self.uri = uri
            self.frameTimes = frameTimes
            self.startsWithIDR = startsWithIDR
        }
    }

    // MARK: Frames

    /// Frame count and presentation times of a rendition against the source's, within half a frame. Reports the
    /// count difference and the first frame whose time differs.
    package static func frameTimeFailures(
        rendition: String,
        source: [Double],
        output: [Double],
        frameDuration: Double
    ) -> [String] {
        var failures: [String] = []
        if output.count != source.count {
            let difference = output.count - source.count
            failures.append(
                "\(rendition): \(output.count) frames decoded, the source has \(source.count) "
                    + "(\(abs(difference)) \(difference < 0 ? "missing" : "extra"))"
            )
        }
        let tolerance = frameDuration / 2
        for (index, (expected, actual)) in zip(source, output).enumerated() where abs(expected - actual) > tolerance {
            failures.append(
                "\(rendition): frame \(index) is at \(self.seconds(actual)), the source's frame \(index) at "
                    + "\(self.seconds(expected)) (first mismatch; tolerance \(self.seconds(tolerance)))"
            )
            break
        }
        return failures
    }

    // MARK: Seams

    /// Each segment's first frame must come one frame after the previous segment's last frame: no gap, no overlap.
    package static func seamFailures(
        rendition: String,
        segments: [SegmentMeasurement],
        frameDuration: Double
    ) -> [String] {
        var failures: [String] = []
        var previous: SegmentMeasurement?
        for segment in segments {
            guard let first = segment.frameTimes.first else {
                failures.append(
                    "\(rendition): \(segment.uri) has no video frames (it is empty or damaged)"
                )
                continue
            }
            if let previous, let last = previous.frameTimes.last {
                let expected = last + frameDuration
                let difference = first - expected
                if abs(difference) > frameDuration / 2 {
                    let frames = Int((abs(difference) / frameDuration).rounded())
                    let kind = difference > 0 ? "gap" : "overlap"
                    let what = difference > 0 ? "missing" : "duplicated"
                    failures.append(
                        "\(rendition): \(kind) of \(self.seconds(abs(difference))) (about \(frames) frame(s) "
                            + "\(what)) between \(previous.uri), last frame at \(self.seconds(last)), and "
                            + "\(segment.uri), first frame at \(self.seconds(first)); expected \(self.seconds(expected))"
                    )
                }
            }
            previous = segment
        }
        return failures
    }

    // MARK: Keyframes

    package static func idrFailures(rendition: String, segments: [SegmentMeasurement]) -> [String] {
        segments.compactMap { segment in
            switch segment.startsWithIDR {
            case .some(false):
                "\(rendition): \(segment.uri) does not start with an IDR frame; a player switching to it "
                    + "cannot decode it alone"
            case .none where !segment.frameTimes.isEmpty:
                "\(rendition): could not tell whether \(segment.uri) starts with an IDR frame"
            default:
                nil
            }
        }
    }

    /// The largest distance between consecutive keyframe times, counting the last GOP up to `streamEnd` (the end of
    /// the last frame) when given; nil without an interval.
    package static func largestInterval(
        _ keyframeTimes: [Double],
        streamEnd: Double? = nil
    ) -> (seconds: Double, from: Double)? {
        var sorted = keyframeTimes.sorted()
        if let streamEnd, let last = sorted.last, streamEnd > last { sorted.append(streamEnd) }
        var largest: (seconds: Double, from: Double)?
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next - previous > (largest?.seconds ?? -1) {
            largest = (next - previous, previous)
        }
        return largest
    }

    package static func keyframeIntervalFailures(
        rendition: String,
        keyframeTimes: [Double],
        streamEnd: Double? = nil,
        maximum: Double
    ) -> [String] {
        guard let largest = self.largestInterval(keyframeTimes, streamEnd: streamEnd),
            largest.seconds > maximum + 0.0005
        else { return [] }
        return [
            "\(rendition): keyframe interval of \(self.seconds(largest.seconds)) from \(self.seconds(largest.from)) "
                + "exceeds the maximum \(self.seconds(maximum)) (--max-keyframe-interval)"
        ]
    }

    /// Every rendition must start its segments at the same times (within `tolerance`) as the first one, so a player
    /// can switch between them at any segment. Reports the earliest start time found in one rendition but not the
    /// other, naming both (a damaged first rendition must not look like a fault of the others).
    package static func alignmentFailures(
        _ renditions: [(name: String, segmentStarts: [Double?])],
        tolerance: Double = 0.001
    ) -> [String] {
        guard let reference = renditions.first else { return [] }
        let referenceStarts = reference.segmentStarts.compactMap { $0 }
        var failures: [String] = []
        for rendition in renditions.dropFirst() {
            if rendition.segmentStarts.count != reference.segmentStarts.count {
                failures.append(
                    "\(rendition.name) has \(rendition.segmentStarts.count) segments, \(reference.name) has "
                        + "\(reference.segmentStarts.count)"
                )
            }
            let starts = rendition.segmentStarts.compactMap { $0 }
            let unmatched =
                referenceStarts.filter { time in !starts.contains { abs($0 - time) <= tolerance } }.map {
                    (time: $0, has: reference.name, lacks: rendition.name)
                }
                + starts.filter { time in !referenceStarts.contains { abs($0 - time) <= tolerance } }.map {
                    (time: $0, has: rendition.name, lacks: reference.name)
                }
            if let first = unmatched.min(by: { $0.time < $1.time }) {
                failures.append(
                    "segment starts differ between \(reference.name) and \(rendition.name): \(first.has) starts a "
                        + "segment at \(self.seconds(first.time)), \(first.lacks) does not (first mismatch; keyframes "
                        + "must be aligned across renditions)"
                )
            }
        }
        return failures
    }

    // MARK: Audio

    /// Decoded audio: first sample time (seconds, on the file's own timeline) and duration.
    package struct AudioMeasurement: Sendable, Equatable {
        package var start: Double
        package var duration: Double

        package init(start: Double, duration: Double) {
            self.start = start
            self.duration = duration
        }
    }

    /// What an audio stream is: codec, profile, sample rate and channels, as libavcodec names them.
    package struct AudioFormat: Sendable, Equatable, CustomStringConvertible {
        package var codec: String
        /// The codec's profile name ("LC", "HE-AAC"), nil when the decoder names none.
        package var profile: String?
        package var sampleRate: Int
        package var channels: Int

        package init(codec: String, profile: String?, sampleRate: Int, channels: Int) {
            self.codec = codec
            self.profile = profile
            self.sampleRate = sampleRate
            self.channels = channels
        }

        /// What the farm delivers whatever the source has (README.md, "Output"): AAC-LC, 48 kHz, stereo, the
        /// default `EncoderSettings` (this file stays free of the wire types, so the values are written out).
        package static let delivered = AudioFormat(codec: "aac", profile: "LC", sampleRate: 48_000, channels: 2)

        package var description: String {
            "\(self.codec)\(self.profile.map { " \($0)" } ?? ""), \(self.sampleRate) Hz, \(self.channels) channel"
                + (self.channels == 1 ? "" : "s")
        }
    }

    /// The output audio is what players are promised: AAC-LC, 48 kHz, stereo (the master playlist says CHANNELS="2").
    package static func audioFormatFailures(
        _ format: AudioFormat,
        expected: AudioFormat = .delivered
    ) -> [String] {
        guard format != expected else { return [] }
        return ["audio: the segments hold \(format); the farm delivers \(expected)"]
    }

    /// Audio duration within `tolerance` of the source's, and the audio's offset from the video's first frame the
    /// same as in the source within `tolerance` (audio/video sync). Without source audio, the output must have none.
    ///
    /// Audio that starts after the video may come out padded with silence from the video's start instead: it is in
    /// sync when it then ends where the source's audio ends (relative to the video), and its duration is measured
    /// from that later start.
    package static func audioFailures(
        source: AudioMeasurement?,
        sourceVideoStart: Double?,
        output: AudioMeasurement?,
        outputVideoStart: Double?,
        outputHasAudioGroup: Bool,
        tolerance: Double = 0.05
    ) -> [String] {
        guard let source else {
            return outputHasAudioGroup || output != nil
                ? ["audio: the source has no audio but the output has an audio rendition"] : []
        }
        guard outputHasAudioGroup else {
            return ["audio: the source has audio but the master playlist names no audio group (EXT-X-MEDIA TYPE=AUDIO)"]
        }
        guard let output else { return [] }  // The reader reported why it could not measure it.
        var failures: [String] = []
        var outputDuration = output.duration
        if let sourceVideoStart, let outputVideoStart {
            let sourceOffset = source.start - sourceVideoStart
            let outputOffset = output.start - outputVideoStart
            let padding = sourceOffset - outputOffset
            let endsAlign = abs(outputOffset + output.duration - (sourceOffset + source.duration)) <= tolerance
            if padding > tolerance, endsAlign {
                // Audio that starts after the first video frame is padded with silence from it.
                outputDuration -= padding
            } else if padding < -tolerance, endsAlign, abs(outputOffset) <= tolerance {
                // Audio that starts before the first video frame is cut there: the rest must all be there.
                outputDuration -= padding
            } else if abs(padding) > tolerance {
                failures.append(
                    "audio: starts \(self.seconds(outputOffset)) after the video, in the source "
                        + "\(self.seconds(sourceOffset)): out of sync by \(self.seconds(-padding)) "
                        + "(tolerance \(self.seconds(tolerance)))"
                )
            }
        }
        if abs(outputDuration - source.duration) > tolerance {
            failures.insert(
                "audio: duration \(self.seconds(outputDuration)), the source's \(self.seconds(source.duration)) "
                    + "(tolerance \(self.seconds(tolerance)))",
                at: 0
            )
        }
        return failures
    }

    /// One demuxed audio packet of the output: the playlist segment it came from, its start and duration.
    package struct AudioPacket: Sendable, Equatable {
        package var segment: Int
        package var start: Double
        package var duration: Double

        package init(segment: Int, start: Double, duration: Double) {
            self.segment = segment
            self.start = start
            self.duration = duration
        }
    }

    /// At each audio segment boundary, the next segment's first packet starts where the previous segment's last
    /// packet ends (within half a packet): no audio frame dropped or repeated at a seam.
    package static func audioSeamFailures(_ packets: [AudioPacket], segmentURIs: [String]) -> [String] {
        var failures: [String] = []
        for (previous, next) in zip(packets, packets.dropFirst()) where previous.segment != next.segment {
            let expected = previous.start + previous.duration
            let difference = next.start - expected
            guard abs(difference) > previous.duration / 2 else { continue }
            let name = { (index: Int) in segmentURIs.indices.contains(index) ? segmentURIs[index] : "segment \(index)" }
            failures.append(
                "audio: \(difference > 0 ? "gap" : "overlap") of \(self.seconds(abs(difference))) between "
                    + "\(name(previous.segment)), ending at \(self.seconds(expected)), and \(name(next.segment)), "
                    + "starting at \(self.seconds(next.start))"
            )
        }
        return failures
    }

    // MARK: Playlists

    /// Tags a VOD media playlist must carry, `TARGETDURATION` against the `EXTINF`s (RFC 8216 §4.3.3.1: every
    /// duration rounded to the nearest integer at most the target; farm writes exactly the rounded-up maximum), and
    /// every `EXTINF` within `tolerance` of the segment's measured duration (nil: not measured).
    package static func mediaPlaylistFailures(
        name: String,
        playlist: HLSMediaPlaylist,
        measuredDurations: [Double?],
        tolerance: Double
    ) -> [String] {
        var failures: [String] = []
        if playlist.playlistType != "VOD" {
            failures.append("\(name): #EXT-X-PLAYLIST-TYPE is \(playlist.playlistType ?? "missing"), not VOD")
        }
        if !playlist.hasEndList { failures.append("\(name): no #EXT-X-ENDLIST; players will treat it as live") }
        if playlist.segments.isEmpty { failures.append("\(name): the playlist lists no segments") }
        let longest = playlist.segments.map(\.duration).max() ?? 0
        if let target = playlist.targetDuration {
            for segment in playlist.segments where Int(segment.duration.rounded()) > target {
                failures.append(
                    "\(name): \(segment.uri) lasts \(segment.duration) s, more than TARGETDURATION \(target) "
                        + "once rounded (RFC 8216 4.3.3.1)"
                )
                break
            }
            let expected = Int(longest.rounded(.up))
            if !playlist.segments.isEmpty, target != expected {
                failures.append("\(name): TARGETDURATION is \(target), the longest EXTINF rounded up is \(expected)")
            }
        } else {
            failures.append("\(name): no #EXT-X-TARGETDURATION")
        }
        for (segment, measured) in zip(playlist.segments, measuredDurations) {
            guard let measured else { continue }
            if abs(segment.duration - measured) > tolerance {
                failures.append(
                    "\(name): \(segment.uri) has EXTINF \(segment.duration) s but lasts \(self.seconds(measured)) "
                        + "(tolerance \(self.seconds(tolerance)))"
                )
            }
        }
        return failures
    }

    package static func masterFailures(_ master: HLSMasterPlaylist) -> [String] {
        var failures: [String] = []
        if !master.independentSegments { failures.append("master: no #EXT-X-INDEPENDENT-SEGMENTS") }
        if master.variants.isEmpty { failures.append("master: no variant (#EXT-X-STREAM-INF)") }
        for variant in master.variants {
            if variant.bandwidth == nil { failures.append("master: \(variant.uri) has no valid BANDWIDTH") }
            if variant.averageBandwidth == nil {
                failures.append("master: \(variant.uri) has no valid AVERAGE-BANDWIDTH")
            }
            if (variant.codecs ?? "").isEmpty { failures.append("master: \(variant.uri) has no CODECS") }
            if let group = variant.audioGroup, master.audioRendition(group: group)?.uri == nil {
                failures.append(
                    "master: \(variant.uri) names audio group \(group) but no EXT-X-MEDIA with a URI has it"
                )
            }
        }
        return failures
    }

    /// CODECS must name what the init segments really hold (`expected`, e.g. `avc1.64001E` from the avcC box and
    /// `mp4a.40.2` from the esds box); hex digits compare case-insensitively.
    package static func codecsFailures(variant: HLSMasterPlaylist.Variant, expected: [String]) -> [String] {
        guard let codecs = variant.codecs, !codecs.isEmpty else { return [] }  // Reported by masterFailures.
        let listed = Set(codecs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
        let missing = expected.filter { !listed.contains($0.lowercased()) }
        guard !missing.isEmpty else { return [] }
        return [
            "master: \(variant.uri): CODECS=\"\(codecs)\" does not name \(missing.joined(separator: ", ")), which the "
                + "init segments hold"
        ]
    }

    /// BANDWIDTH must be at least the measured peak; up to `slack` below it is a note, not a failure (another
    /// measure of the same peak may differ slightly), and up to 0.01% below is not even a note: EXTINF's six decimals
    /// and integer rounding make the measure that imprecise. More than `slack` above it fails too: a player would
    /// pick a lower rung than its bandwidth allows. AVERAGE-BANDWIDTH, when present, within `slack` of the measured
    /// average.
    package static func bandwidthFailures(
        variant: HLSMasterPlaylist.Variant,
        measuredPeak: Int,
        measuredAverage: Int,
        slack: Double = 0.10
    ) -> (failures: [String], notes: [String]) {
        var failures: [String] = []
        var notes: [String] = []
        let precision = max(8, measuredPeak / 10_000)
        if let bandwidth = variant.bandwidth, bandwidth < measuredPeak - precision {
            let line =
                "\(variant.uri): BANDWIDTH \(bandwidth) is below the measured peak segment bit rate \(measuredPeak)"
            if Double(bandwidth) < Double(measuredPeak) * (1 - slack) {
                failures.append("master: " + line + " by more than \(Int(slack * 100))%")
            } else {
                notes.append(line + " (within \(Int(slack * 100))%)")
            }
        }
        if let bandwidth = variant.bandwidth, measuredPeak > 0, Double(bandwidth) > Double(measuredPeak) * (1 + slack) {
            failures.append(
                "master: \(variant.uri): BANDWIDTH \(bandwidth) is more than \(Int(slack * 100))% above the measured "
                    + "peak segment bit rate \(measuredPeak); players would choose a lower rung than they can play"
            )
        }
        if let average = variant.averageBandwidth, measuredAverage > 0,
            abs(Double(average - measuredAverage)) > Double(measuredAverage) * slack
        {
            failures.append(
                "master: \(variant.uri): AVERAGE-BANDWIDTH \(average) is not within \(Int(slack * 100))% of the "
                    + "measured average \(measuredAverage)"
            )
        }
        return (failures, notes)
    }

    /// FRAME-RATE must be present (Apple's HLS authoring spec asks for it on every variant) and within `slack` of the
    /// rate measured from the rendition's frames.
    package static func frameRateFailures(
        variant: HLSMasterPlaylist.Variant,
        measured: Double?,
        slack: Double = 0.01
    ) -> [String] {
        guard let declared = variant.frameRate else {
            return ["master: \(variant.uri) has no valid FRAME-RATE"]
        }
        guard let measured, measured > 0, abs(declared - measured) > measured * slack else { return [] }
        return [
            "master: \(variant.uri): FRAME-RATE \(String(format: "%.3f", declared)) is not within "
                + "\(Int(slack * 100))% of the measured \(String(format: "%.3f", measured)) frames per second"
        ]
    }

    /// One entry of an I-frame playlist, as found in its file.
    package struct IFrameEntry: Sendable, Equatable {
        package var uri: String
        package var byteRange: Range<Int>?
        /// Size of the file the entry points into; nil when it is missing.
        package var fileSize: Int?
        /// True when the range starts with a whole keyframe the player can decode alone (for fMP4: a `moof` whose
        /// first sample is a sync sample lying inside the range); nil when that could not be told.
        package var holdsKeyframe: Bool?

        package init(uri: String, byteRange: Range<Int>?, fileSize: Int?, holdsKeyframe: Bool?) {
            self.uri = uri
            self.byteRange = byteRange
            self.fileSize = fileSize
            self.holdsKeyframe = holdsKeyframe
        }
    }

    /// Every video variant has an `EXT-X-I-FRAME-STREAM-INF` with BANDWIDTH, CODECS, RESOLUTION and a URI in the
    /// variant's folder (trick play: scrubbing and fast forward on Apple players).
    package static func iFrameStreamFailures(_ master: HLSMasterPlaylist) -> [String] {
        var failures: [String] = []
        for variant in master.variants {
            guard let stream = master.iFrameStream(beside: variant) else {
                failures.append("master: \(variant.uri) has no EXT-X-I-FRAME-STREAM-INF (I-frame playlist) beside it")
                continue
            }
            for attribute in ["BANDWIDTH", "CODECS", "RESOLUTION"] where stream.attributes[attribute] == nil {
                failures.append("master: the EXT-X-I-FRAME-STREAM-INF of \(stream.uri ?? "?") has no \(attribute)")
            }
        }
        return failures
    }

    /// An I-frame playlist: `EXT-X-I-FRAMES-ONLY`, version 4 or later (byte ranges), an init segment when its
    /// rendition has one, and every entry a byte range inside its file holding a keyframe.
    package static func iFramePlaylistFailures(
        name: String,
        playlist: HLSMediaPlaylist,
        entries: [IFrameEntry],
        needsMap: Bool
    ) -> [String] {
        var failures: [String] = []
        if !playlist.iFramesOnly { failures.append("\(name): no #EXT-X-I-FRAMES-ONLY") }
        if (playlist.version ?? 1) < 4 {
            failures.append("\(name): #EXT-X-VERSION is \(playlist.version ?? 1); byte ranges need version 4 or later")
        }
        if needsMap, playlist.mapURI == nil { failures.append("\(name): no #EXT-X-MAP init segment") }
        if entries.isEmpty { failures.append("\(name): the playlist lists no I-frame") }
        for entry in entries {
            guard let range = entry.byteRange else {
                failures.append("\(name): \(entry.uri) has no #EXT-X-BYTERANGE; an I-frame entry must name its bytes")
                continue
            }
            guard let size = entry.fileSize else {
                failures.append("\(name): \(entry.uri) is missing or unreadable")
                continue
            }
            if range.isEmpty || range.upperBound > size {
                failures.append(
                    "\(name): \(entry.uri) byte range \(range.count)@\(range.lowerBound) is outside the file's "
                        + "\(size) bytes"
                )
            } else if entry.holdsKeyframe == false {
                failures.append(
                    "\(name): \(entry.uri) byte range \(range.count)@\(range.lowerBound) does not hold a whole "
                        + "keyframe a player can decode alone"
                )
            }
        }
        return failures
    }

    // MARK: Quality

    package static func qualityFailures(rendition: String, psnrY: Double?, minimum: Double?) -> [String] {
        guard let minimum else { return [] }
        guard let psnrY else { return ["\(rendition): PSNR not measured (no frame pairs), --min-psnr \(minimum)"] }
        guard psnrY < minimum else { return [] }
        return ["\(rendition): PSNR-Y \(String(format: "%.2f", psnrY)) dB is below --min-psnr \(minimum)"]
    }

    // MARK: Formatting

    package static func seconds(_ value: Double) -> String { String(format: "%.3f s", value) }
}
