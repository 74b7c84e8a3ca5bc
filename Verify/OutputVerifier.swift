import CFFmpeg
import FarmFormats
import FarmMedia
import FarmProtocol
import Foundation

/// Proves that an HLS output is a faithful transcode of its source (`farm verify`): reads the playlists, decodes
/// the source and every rendition in one pass, and runs the pure checks of `VerificationChecks` on what it measured.
///
/// A video rendition is read as a player reads it: segment after segment in playlist order, each demuxed as its
/// init segment followed by that segment (one small temporary file at a time), all fed to one decoder; so every
/// frame is known to come from its segment, and a damaged segment costs only its own frames. The audio rendition,
/// small, is read as the init segment followed by all its segments in one temporary file, so AAC priming and
/// padding are handled once as a player would.
///
/// Never throws: a missing file, an unreadable playlist or a segment that does not decode becomes a failure line in
/// the report, and the other checks still run where they can.
package enum OutputVerifier {
    package static func verify(
        source: String,
        hlsDirectory: String,
        options: VerificationOptions = .init()
    ) -> VerificationReport {
        MediaLogging.quiet()
        var report = VerificationReport(source: source, hlsDirectory: hlsDirectory)
        let directory = URL(fileURLWithPath: hlsDirectory)
        let masterPath = directory.appendingPathComponent("master.m3u8").path

        guard
            let master = self.readPlaylist(
                masterPath,
                as: "master playlist",
                report: &report,
                HLSMasterPlaylist.init(parsing:)
            )
        else { return report }
        report.failures += VerificationChecks.masterFailures(master)
        report.failures += VerificationChecks.iFrameStreamFailures(master)

        let work: TemporaryFolder
        do {
            work = try TemporaryFolder()
        } catch {
            report.failures.append("cannot create a temporary folder to join segments in: \(error)")
            return report
        }
        defer { work.remove() }

        // Video renditions: playlist, segment files, and a reader over them.
        var rungs: [RungState] = []
        for (index, variant) in master.variants.enumerated() {
            let playlistURL = directory.appendingPathComponent(variant.uri)
            let name = self.renditionName(variant.uri)
            guard
                let playlist = self.readPlaylist(
                    playlistURL.path,
                    as: "\(name) media playlist",
                    report: &report,
                    HLSMediaPlaylist.init(parsing:)
                )
            else { continue }
            let files = self.locate(playlist, in: playlistURL.deletingLastPathComponent(), name: name, report: &report)
            let state = RungState(name: name, variant: variant, playlist: playlist, files: files)
            if files.initData != nil || playlist.isTransportStream {
                let temporary = work.file("video\(index).mp4")
                let opened = StreamReader.sequence(count: playlist.segments.count, type: AVMEDIA_TYPE_VIDEO) {
                    segment in
                    guard let segmentPath = files.segmentPaths[segment] else { return nil }
                    // An MPEG-TS segment is read alone, as a player reads it.
                    guard let initData = files.initData else { return .init(path: segmentPath) }
                    let data = try Data(contentsOf: URL(fileURLWithPath: segmentPath))
                    try Self.write([initData, data], to: temporary)
                    // Times as the fragment's boxes state them (`StreamReader.Input`); a fragment they cannot be
                    // read from is read as libavformat reads it, and its other checks name what is wrong.
                    let timing = try? MP4Boxes.timing(ofFragment: [UInt8](data))
                    if let deepest = timing?.deepestNegativeCompositionOffset, deepest < 0 {
                        state.picturesShownBeforeDecoding.append((segment, deepest))
                    }
                    return .init(
                        path: temporary,
                        presentationStart: timing.map { $0.baseDecodeTime + $0.leadingCompositionOffset }
                    )
                }
                state.reader = opened.reader
                if opened.reader == nil {
                    report.failures.append(
                        "\(name): no segment could be read as video with \(playlist.mapURI ?? "the init segment")"
                            + (opened.errors.first.map { " (first error: \($0.message))" } ?? "")
                            + "; the init segment or the segments are damaged"
                    )
                }
            }
            rungs.append(state)
        }

        // The source, decoded once; every rendition decoded in step with it.
        let sourceVideo: SourceVideo
        do {
            guard let measured = try self.decodeInStep(source: source, rungs: rungs, options: options) else {
                report.failures.append("source: \(source) has no video stream")
                return report
            }
            sourceVideo = measured
        } catch {
            report.failures.append("source: cannot decode \(source): \(error)")
            return report
        }
        report.sourceFrames = sourceVideo.times.count
        report.sourceFrameRate = sourceVideo.frameDuration > 0 ? 1 / sourceVideo.frameDuration : nil
        if sourceVideo.times.isEmpty { report.failures.append("source: \(source) has no decodable video frame") }

        // Audio: the source's and the group named by the variants.
        let audioGroup = master.variants.lazy.compactMap(\.audioGroup).first
        var sourceAudio: VerificationChecks.AudioMeasurement?
        do {
            sourceAudio = try self.measureAudio(path: source, followingTimestamps: true)?.measurement
        } catch {
            report.failures.append("source: cannot decode the audio of \(source): \(error)")
        }
        report.sourceAudioDuration = sourceAudio?.duration
        var outputAudio: AudioState?
        if let audioGroup, let uri = master.audioRendition(group: audioGroup)?.uri {
            outputAudio = self.readAudioRendition(uri: uri, directory: directory, work: work, report: &report)
        }
        report.outputAudioDuration = outputAudio?.measurement?.duration
        let outputVideoStart = rungs.lazy.compactMap(\.firstSeconds).first
        if let audio = sourceAudio, let video = sourceVideo.start { report.sourceAudioOffset = audio.start - video }
        if let audio = outputAudio?.measurement, let video = outputVideoStart {
            report.outputAudioOffset = audio.start - video
        }
        report.failures += VerificationChecks.audioFailures(
            source: sourceAudio,
            sourceVideoStart: sourceVideo.start,
            output: outputAudio?.measurement,
            outputVideoStart: outputVideoStart,
            outputHasAudioGroup: audioGroup != nil,
            tolerance: options.audioTolerance
        )
        var audioPeak = 0
        var audioAverage = 0
        if let outputAudio {
            let segments = self.sizedSegments(outputAudio.playlist, files: outputAudio.files)
            audioPeak = SegmentBitrate.peak(
                segments,
                targetDuration: Double(outputAudio.playlist.targetDuration ?? 0)
            )
            audioAverage = SegmentBitrate.average(segments)
            report.failures += VerificationChecks.mediaPlaylistFailures(
                name: "audio",
                playlist: outputAudio.playlist,
                measuredDurations: outputAudio.segmentDurations,
                tolerance: outputAudio.frameDuration
            )
        }

        // Per-rendition checks.
        var alignment: [(name: String, segmentStarts: [Double?])] = []
        for rung in rungs {
            if let starts = self.check(
                rung,
                source: sourceVideo,
                audio: outputAudio,
                audioBitrates: (audioPeak, audioAverage),
                options: options,
                report: &report
            ) {
                alignment.append((rung.name, starts))
            }
        }
        report.failures += VerificationChecks.alignmentFailures(alignment)
        for rung in rungs {
            let iFrames = self.iFrameFailures(
                master: master,
                variant: rung.variant,
                directory: directory,
                needsMap: !rung.playlist.isTransportStream
            )
            report.failures += iFrames.failures
            report.notes += iFrames.notes
        }
        return report
    }

    /// The checks of one video rendition; returns its segment start times for the alignment check (nil when it
    /// could not be read).
    private static func check(
        _ rung: RungState,
        source: SourceVideo,
        audio: AudioState?,
        audioBitrates: (peak: Int, average: Int),
        options: VerificationOptions,
        report: inout VerificationReport
    ) -> [Double?]? {
        var summary = VerificationReport.Rung(name: rung.name)
        summary.declaredBandwidth = rung.variant.bandwidth
        summary.width = rung.width
        summary.height = rung.height
        summary.segments = rung.playlist.segments.count
        summary.frames = rung.times.count
        if let resolution = rung.variant.resolution, rung.width > 0,
            resolution.width != rung.width || resolution.height != rung.height
        {
            report.failures.append(
                "master: \(rung.variant.uri) says RESOLUTION=\(resolution.width)x\(resolution.height), the "
                    + "frames are \(rung.width)x\(rung.height)"
            )
        }
        if let error = rung.error { report.failures.append("\(rung.name): \(error)") }
        if let change = rung.sizeChange { report.failures.append("\(rung.name): \(change)") }
        if let (segment, offset) = rung.picturesShownBeforeDecoding.min(by: { $0.offset < $1.offset }) {
            report.failures.append(
                "\(rung.name): \(rung.picturesShownBeforeDecoding.count) segments show pictures before they decode "
                    + "(negative composition offsets, the deepest \(offset) units in \(rung.playlist.segments[segment].uri)): "
                    + "ffmpeg, mpv and VLC show such pictures late and out of step with the sound; re-encode the job "
                    + "with this version, which delays the whole presentation instead"
            )
        }
        for (segment, message) in rung.reader?.inputErrors ?? [] where segment < rung.playlist.segments.count {
            report.failures.append(
                "\(rung.name): \(rung.playlist.segments[segment].uri) cannot be read completely: \(message)"
            )
        }
        let segments = rung.segmentMeasurements()
        if rung.reader != nil {
            report.failures += VerificationChecks.frameTimeFailures(
                rendition: rung.name,
                source: source.times,
                output: rung.times,
                frameDuration: source.frameDuration
            )
            report.failures += VerificationChecks.seamFailures(
                rendition: rung.name,
                segments: segments.filter { $0.present }.map(\.measurement),
                frameDuration: source.frameDuration
            )
            report.failures += VerificationChecks.idrFailures(
                rendition: rung.name,
                segments: segments.filter { $0.present }.map(\.measurement)
            )
            let keyframes = rung.keyframeTimes()
            let end = rung.times.max().map { $0 + source.frameDuration }
            summary.largestKeyframeInterval =
                VerificationChecks.largestInterval(keyframes, streamEnd: end)?.seconds
            report.failures += VerificationChecks.keyframeIntervalFailures(
                rendition: rung.name,
                keyframeTimes: keyframes,
                streamEnd: end,
                maximum: options.maxKeyframeInterval
            )
        }
        report.failures += VerificationChecks.mediaPlaylistFailures(
            name: rung.name,
            playlist: rung.playlist,
            measuredDurations: segments.map { segment in
                guard let first = segment.measurement.frameTimes.first,
                    let last = segment.measurement.frameTimes.last
                else { return nil }
                return last - first + source.frameDuration
            },
            tolerance: source.frameDuration
        )
        let sized = self.sizedSegments(rung.playlist, files: rung.files)
        let peak =
            SegmentBitrate.peak(sized, targetDuration: Double(rung.playlist.targetDuration ?? 0))
            + audioBitrates.peak
        let average = SegmentBitrate.average(sized) + audioBitrates.average
        summary.measuredPeakBitrate = peak
        summary.measuredAverageBitrate = average
        let codecs = [rung.files.initData, audio?.files.initData].compactMap { data in
            data.flatMap { MP4Boxes.codecString(initSegment: [UInt8]($0)) }
        }
        report.failures += VerificationChecks.codecsFailures(variant: rung.variant, expected: codecs)
        let bandwidth = VerificationChecks.bandwidthFailures(
            variant: rung.variant,
            measuredPeak: peak,
            measuredAverage: average
        )
        report.failures += bandwidth.failures
        report.notes += bandwidth.notes
        if let first = rung.times.min(), let last = rung.times.max(), rung.times.count > 1 {
            summary.measuredFrameRate = Double(rung.times.count) / (last - first + source.frameDuration)
        }
        report.failures += VerificationChecks.frameRateFailures(
            variant: rung.variant,
            measured: summary.measuredFrameRate
        )
        if options.measureQuality {
            summary.psnrY = rung.quality.psnrY
            summary.psnrYUV = rung.quality.psnrYUV
            summary.ssimY = rung.quality.ssimY
            report.failures += VerificationChecks.qualityFailures(
                rendition: rung.name,
                psnrY: rung.quality.psnrY,
                minimum: options.minimumPSNR
            )
            if rung.quality.frames > 0, rung.quality.frames < source.times.count {
                report.notes.append(
                    "\(rung.name): quality measured on \(rung.quality.frames) of the source's \(source.times.count) "
                        + "frames (the others have no rendition frame at their time and size)"
                )
            }
        }
        report.rungs.append(summary)
        return rung.reader == nil ? nil : segments.map { $0.measurement.frameTimes.first }
    }

    // MARK: Reading playlists and segments

    private static func readPlaylist<Playlist>(
        _ path: String,
        as label: String,
        report: inout VerificationReport,
        _ parse: (String) throws -> Playlist
    ) -> Playlist? {
        guard FileManager.default.fileExists(atPath: path) else {
            let hint =
                label == "master playlist"
                ? "pass the job's output folder (the one holding master.m3u8)"
                : "the output is incomplete; transcode it again"
            report.failures.append("\(label): \(path) does not exist; \(hint)")
            return nil
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            report.failures.append("\(label): \(path) is not readable")
            return nil
        }
        do {
            return try parse(String(decoding: data, as: UTF8.self))
        } catch {
            report.failures.append("\(label): \(path) is not a valid playlist: \(error)")
            return nil
        }
    }

    /// "240p/playlist.m3u8" → "240p".
    private static func renditionName(_ uri: String) -> String {
        let components = uri.split(separator: "/")
        return components.count >= 2 ? String(components[components.count - 2]) : uri
    }

    /// The init segment's bytes and each listed segment's path and size. A missing or unreadable file is reported
    /// and left out (the frame and seam checks then name the hole).
    private static func locate(
        _ playlist: HLSMediaPlaylist,
        in folder: URL,
        name: String,
        report: inout VerificationReport
    ) -> PlaylistFiles {
        var files = PlaylistFiles(
            initData: nil,
            segmentPaths: Array(repeating: nil, count: playlist.segments.count),
            segmentSizes: Array(repeating: nil, count: playlist.segments.count)
        )
        if let mapURI = playlist.mapURI {
            let initPath = folder.appendingPathComponent(mapURI).path
            files.initData = FileManager.default.contents(atPath: initPath)
            if files.initData == nil {
                report.failures.append("\(name): the init segment \(initPath) is missing or unreadable")
            }
        } else if !playlist.isTransportStream {
            report.failures.append(
                "\(name): the playlist has no #EXT-X-MAP init segment, which fMP4 segments need (only MPEG-TS .ts "
                    + "segments start without one)"
            )
        }
        for (index, segment) in playlist.segments.enumerated() {
            let path = folder.appendingPathComponent(segment.uri).path
            guard FileManager.default.isReadableFile(atPath: path),
                let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
            else {
                report.failures.append(
                    "\(name): \(segment.uri) is listed in the playlist but \(path) is missing or unreadable"
                )
                continue
            }
            files.segmentPaths[index] = path
            files.segmentSizes[index] = size
        }
        return files
    }

    /// The init segment followed by every readable segment, in one file, with each segment's byte range in it.
    private static func join(_ files: PlaylistFiles, transportStream: Bool, to path: String) throws -> JoinedSegments? {
        guard files.initData != nil || transportStream else { return nil }
        var joined = JoinedSegments(path: path, ranges: Array(repeating: nil, count: files.segmentPaths.count))
        // MPEG-TS segments join as they are: a TS stream can be cut and joined at any packet.
        var parts = files.initData.map { [$0] } ?? []
        var offset = Int64(files.initData?.count ?? 0)
        for (index, segmentPath) in files.segmentPaths.enumerated() {
            guard let segmentPath else { continue }
            let data = try Data(contentsOf: URL(fileURLWithPath: segmentPath))
            parts.append(data)
            joined.ranges[index] = offset..<(offset + Int64(data.count))
            offset += Int64(data.count)
        }
        try self.write(parts, to: path)
        return joined
    }

    private static func write(_ parts: [Data], to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw MediaError(.io, "cannot create the temporary file \(path); check the free space in the temp folder")
        }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? output.close() }
        for part in parts { try output.write(contentsOf: part) }
    }

    /// EXTINF durations with file sizes (segments that could not be read count as empty).
    private static func sizedSegments(
        _ playlist: HLSMediaPlaylist,
        files: PlaylistFiles
    ) -> [(duration: Double, bytes: Int)] {
        playlist.segments.enumerated().map { index, segment in (segment.duration, files.segmentSizes[index] ?? 0) }
    }

    // MARK: Decoding

    private struct SourceVideo {
        /// Presentation times relative to the first frame.
        var times: [Double]
        /// First frame's time on the file's timeline.
        var start: Double?
        var frameDuration: Double
    }

    /// Decodes the source and, in step, every rendition: each rendition frame is paired with the source frame at
    /// the same relative time (within half a frame) for PSNR/SSIM; every frame's time is recorded.
    private static func decodeInStep(
        source: String,
        rungs: [RungState],
        options: VerificationOptions
    ) throws -> SourceVideo? {
        guard let reader = try StreamReader(path: source, type: AVMEDIA_TYPE_VIDEO) else { return nil }
        let rate = reader.frameRate.doubleValue
        var frameDuration = rate > 0 ? 1 / rate : 0
        var times: [Double] = []
        var firstTimestamp: Int64?
        // The reference pictures are the source deinterlaced and tone mapped as the farm's renditions are.
        let converter = PictureConverter(reader.conversion, label: source)
        func measure(_ frame: Frame) throws {
            let timestamp = frame.pts
            let first = firstTimestamp ?? timestamp
            firstTimestamp = first
            let time = reader.seconds(timestamp - first)
            times.append(time)
            if frameDuration <= 0 { return }
            var scaled: [Int: YUVPicture] = [:]
            for rung in rungs {
                guard let pending = rung.pendingFrame(before: time, tolerance: frameDuration / 2, options: options)
                else { continue }
                guard abs(pending.time - time) <= frameDuration / 2 else { continue }
                rung.pending = nil
                guard options.measureQuality, let picture = pending.picture else { continue }
                let key = rung.width << 32 | rung.height
                if scaled[key] == nil {
                    scaled[key] = try rung.scaleSource(frame, rotation: reader.rotation)
                }
                if let reference = scaled[key] { rung.quality.add(reference: reference, distorted: picture) }
            }
        }
        while try reader.next() {
            guard let timestamp = reader.frameTimestamp else { continue }
            reader.frame.pts = timestamp
            for converted in try converter.push(reader.frame, timeBase: reader.timeBase.av) { try measure(converted) }
        }
        for converted in try converter.flush() { try measure(converted) }
        if frameDuration <= 0 {
            // No nominal frame rate: the median distance between frames.
            let differences = zip(times, times.dropFirst()).map { $1 - $0 }.sorted()
            frameDuration = differences.isEmpty ? 0.04 : differences[differences.count / 2]
        }
        for rung in rungs { rung.drain(options: options) }
        return SourceVideo(
            times: times,
            start: firstTimestamp.map { reader.seconds($0) },
            frameDuration: frameDuration
        )
    }

    private struct AudioState {
        var playlist: HLSMediaPlaylist
        var files: PlaylistFiles
        var measurement: VerificationChecks.AudioMeasurement?
        var segmentDurations: [Double?]
        var frameDuration: Double
    }

    private static func readAudioRendition(
        uri: String,
        directory: URL,
        work: TemporaryFolder,
        report: inout VerificationReport
    ) -> AudioState? {
        let playlistURL = directory.appendingPathComponent(uri)
        guard
            let playlist = self.readPlaylist(
                playlistURL.path,
                as: "audio media playlist",
                report: &report,
                HLSMediaPlaylist.init(parsing:)
            )
        else { return nil }
        let files = self.locate(playlist, in: playlistURL.deletingLastPathComponent(), name: "audio", report: &report)
        var state = AudioState(
            playlist: playlist,
            files: files,
            measurement: nil,
            segmentDurations: Array(repeating: nil, count: playlist.segments.count),
            frameDuration: 1024.0 / 48000
        )
        do {
            guard
                let joined = try self.join(
                    files,
                    transportStream: playlist.isTransportStream,
                    to: work.file(playlist.isTransportStream ? "audio.ts" : "audio.mp4")
                )
            else { return state }
            guard let audio = try self.measureAudio(path: joined.path) else {
                report.failures.append("audio: the audio segments hold no audio stream")
                return state
            }
            state.measurement = audio.measurement
            report.failures += VerificationChecks.audioFormatFailures(audio.format)
            var durations = Array(repeating: 0.0, count: playlist.segments.count)
            var longestPacket = 0.0
            // A packet without a duration (libavformat leaves the first one of an fMP4 without) lasts as long as
            // the most common one.
            let known = audio.packets.map(\.duration).filter { $0 > 0 }
            let usual = Dictionary(known.map { ($0, 1) }, uniquingKeysWith: +).max { $0.value < $1.value }?.key ?? 0
            var located: [VerificationChecks.AudioPacket] = []
            for packet in audio.packets {
                guard let segment = joined.segment(containing: packet.position) else { continue }
                let duration = audio.timeBase.seconds(packet.duration > 0 ? packet.duration : usual)
                durations[segment] += duration
                longestPacket = max(longestPacket, duration)
                located.append(.init(segment: segment, start: audio.timeBase.seconds(packet.pts), duration: duration))
            }
            report.failures += VerificationChecks.audioSeamFailures(
                located.sorted { $0.start < $1.start },
                segmentURIs: playlist.segments.map(\.uri)
            )
            if longestPacket > 0 { state.frameDuration = longestPacket }
            state.segmentDurations = durations.enumerated().map { joined.ranges[$0.offset] == nil ? nil : $0.element }
        } catch {
            report.failures.append("audio: cannot decode the audio segments: \(error)")
        }
        return state
    }

    /// Decodes a file's audio: the first sample's time, its length and the stream's format. A source's length is
    /// the timeline its timestamps draw, which is what plays in step with its video: in a source joined by stream
    /// copy, each seam decodes more samples than its timestamps give it, and the farm follows the timestamps
    /// (`AudioTimeline`). The output's length is its samples counted: it must have no gap to hide.
    private static func measureAudio(
        path: String,
        followingTimestamps: Bool = false
    ) throws -> (
        measurement: VerificationChecks.AudioMeasurement, packets: [StreamReader.PacketRecord], timeBase: Rational,
        format: VerificationChecks.AudioFormat
    )? {
        guard let reader = try StreamReader(path: path, type: AVMEDIA_TYPE_AUDIO) else { return nil }
        var start: Double?
        var counted = 0.0
        var end: Double?
        while try reader.next() {
            let frame = reader.frame
            let length = frame.sampleRate > 0 ? Double(frame.sampleCount) / Double(frame.sampleRate) : 0
            counted += length
            guard let timestamp = reader.frameTimestamp else {
                end = (end ?? 0) + length
                continue
            }
            let seconds = reader.seconds(timestamp)
            if start == nil { start = seconds }
            end = max(end ?? seconds, seconds + length)
        }
        let duration = followingTimestamps ? (end ?? 0) - (start ?? 0) : counted
        return (.init(start: start ?? 0, duration: duration), reader.packets, reader.timeBase, reader.audioFormat)
    }
}
