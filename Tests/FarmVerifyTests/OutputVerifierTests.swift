import FarmFormats
import FarmMedia
import FarmTestSupport
import FarmVerify
import Foundation
import Testing

/// `farm verify` on real files: an HLS output made by ffmpeg's fMP4 segmenter with farm's playlists (`HLSFixture`),
/// then damaged in the ways the checks must catch.
@Suite("Output verifier, real libav")
struct OutputVerifierTests {
    typealias Rung = HLSFixture.Rung

    static let rungs = HLSFixture.rungs

    static func makeSource(_ directory: TemporaryDirectory, audio: Bool = true) throws -> String {
        try HLSFixture.makeSource(directory, audio: audio)
    }

    static func makeOutput(source: String, at output: String, rungs: [Rung] = Self.rungs, audio: Bool = true) throws {
        try HLSFixture.makeOutput(source: source, at: output, rungs: rungs, audio: audio)
    }

    static func writeMediaPlaylist(_ segments: [HLSMediaPlaylist.Segment], to path: String) throws {
        try HLSFixture.writeMediaPlaylist(segments, to: path)
    }

    @Test func aFaithfulOutputPasses() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output)

        let report = OutputVerifier.verify(source: source, hlsDirectory: output)
        #expect(report.failures == [], "\(report.text)")
        #expect(report.passed)
        #expect(report.sourceFrames == 100)
        #expect(report.rungs.map(\.name) == ["240p", "120p"])
        for rung in report.rungs {
            #expect(rung.frames == 100)
            #expect(rung.segments == 4)
            #expect(abs((rung.largestKeyframeInterval ?? 0) - 1) < 0.001)
            #expect((rung.psnrY ?? 0) > 30 && (rung.psnrY ?? 0) < 80, "a lossy encode is close but not identical")
            #expect((rung.ssimY ?? 0) > 0.9 && (rung.ssimY ?? 1) < 1)
            #expect((rung.measuredPeakBitrate ?? 0) > 0)
        }
        #expect(abs((report.outputAudioDuration ?? 0) - 4) < 0.05)
        #expect(report.text.contains("PASSED"))

        // The same output against stricter limits.
        let strict = OutputVerifier.verify(
            source: source,
            hlsDirectory: output,
            options: .init(maxKeyframeInterval: 0.5, minimumPSNR: 99)
        )
        #expect(!strict.passed)
        #expect(strict.failures.contains { $0.hasPrefix("240p: keyframe interval of 1.000 s") })
        #expect(strict.failures.contains { $0.hasPrefix("120p: PSNR-Y") && $0.contains("below --min-psnr 99") })

        // A master whose CODECS do not match the init segments (here: a made-up level for 240p).
        let masterPath = output + "/master.m3u8"
        let master = try String(contentsOfFile: masterPath, encoding: .utf8)
        let codec = try HLSFixture.codec(output + "/240p/init.mp4")
        try master.replacingOccurrences(of: "CODECS=\"\(codec)", with: "CODECS=\"avc1.4D4033").write(
            toFile: masterPath,
            atomically: true,
            encoding: .utf8
        )
        let wrongCodecs = OutputVerifier.verify(
            source: source,
            hlsDirectory: output,
            options: .init(measureQuality: false)
        )
        #expect(
            wrongCodecs.failures == [
                "master: 240p/playlist.m3u8: CODECS=\"avc1.4D4033,mp4a.40.2\" does not name \(codec), which the init "
                    + "segments hold"
            ]
        )
    }

    @Test func aSegmentMissingFromPlaylistAndDiskIsNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output)
        // Drop 240p's third segment (1 s to 2 s... the frames 50 to 74) from the playlist and the disk.
        let playlistPath = output + "/240p/playlist.m3u8"
        let playlist = try HLSMediaPlaylist(parsing: String(contentsOfFile: playlistPath, encoding: .utf8))
        try Self.writeMediaPlaylist(playlist.segments.filter { $0.uri != "segment_00002.m4s" }, to: playlistPath)
        try FileManager.default.removeItem(atPath: output + "/240p/segment_00002.m4s")

        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(!report.passed)
        #expect(report.failures.contains("240p: 75 frames decoded, the source has 100 (25 missing)"), "\(report.text)")
        #expect(
            report.failures.contains { $0.hasPrefix("240p: frame 50 is at 3.000 s, the source's frame 50 at 2.000 s") }
        )
        #expect(
            report.failures.contains {
                $0.hasPrefix("240p: gap of 1.000 s (about 25 frame(s) missing) between segment_00001.m4s")
                    && $0.contains("and segment_00003.m4s")
            }
        )
        #expect(report.failures.contains("120p has 4 segments, 240p has 3"))
        #expect(report.failures.contains { $0.contains("120p starts a segment at 2.000 s, 240p does not") })
        #expect(!report.failures.contains { $0.hasPrefix("120p:") }, "the intact rung passes its own checks")
        #expect(report.text.contains("FAILED"))
    }

    @Test func segmentsListedOutOfOrderAreNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory, audio: false)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output, rungs: [Self.rungs[1]], audio: false)
        let playlistPath = output + "/120p/playlist.m3u8"
        var segments = try HLSMediaPlaylist(parsing: String(contentsOfFile: playlistPath, encoding: .utf8)).segments
        segments.swapAt(1, 2)
        try Self.writeMediaPlaylist(segments, to: playlistPath)

        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(report.rungs.first?.frames == 100, "every frame is there, in the wrong order")
        #expect(
            report.failures.contains { $0.hasPrefix("120p: frame 25 is at 2.000 s, the source's frame 25 at 1.000 s") }
        )
        #expect(
            report.failures.contains {
                $0.hasPrefix("120p: gap of 1.000 s (about 25 frame(s) missing) between segment_00000.m4s")
            }
        )
        #expect(
            report.failures.contains {
                $0.hasPrefix("120p: overlap of 2.000 s (about 50 frame(s) duplicated) between segment_00002.m4s")
            },
            "\(report.text)"
        )
    }

    @Test func aMissingAudioSegmentIsNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output, rungs: [Self.rungs[1]])
        let playlistPath = output + "/audio/playlist.m3u8"
        let playlist = try HLSMediaPlaylist(parsing: String(contentsOfFile: playlistPath, encoding: .utf8))
        try Self.writeMediaPlaylist(playlist.segments.filter { $0.uri != "segment_00001.m4s" }, to: playlistPath)

        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(report.failures.count == 2, "\(report.text)")
        #expect(report.failures.contains { $0.hasPrefix("audio: duration 3.0") && $0.contains("the source's 4.011 s") })
        #expect(
            report.failures.contains {
                $0.hasPrefix("audio: gap of 1.003 s between segment_00000.m4s") && $0.contains("and segment_00002.m4s")
            }
        )
    }

    /// Audio in another format than the farm delivers (mono at 44.1 kHz): named with what it is and what it must be.
    @Test func audioInAnotherFormatIsNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output, rungs: [Self.rungs[1]])
        try FileManager.default.removeItem(atPath: output + "/audio")
        try HLSFixture.segment(
            source: source,
            into: output + "/audio",
            rung: nil,
            audioCodec: ["-c:a", "aac", "-b:a", "96k", "-ac", "1", "-ar", "44100"]
        )
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(
            report.failures.contains(
                "audio: the segments hold aac LC, 44100 Hz, 1 channel; the farm delivers aac LC, 48000 Hz, 2 channels"
            ),
            "\(report.text)"
        )
    }

    @Test func aListedSegmentThatIsGoneIsNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output)
        try FileManager.default.removeItem(atPath: output + "/120p/segment_00001.m4s")

        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(report.failures.contains { $0.hasPrefix("120p: segment_00001.m4s is listed in the playlist but") })
        #expect(report.failures.contains("120p: 75 frames decoded, the source has 100 (25 missing)"))
        #expect(report.failures.contains { $0.hasPrefix("120p: gap of 1.000 s") })
    }

    @Test func misalignedKeyframesAreNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory)
        let output = directory.file("hls")
        // 120p with a keyframe every 30 frames: its segments start at 0, 1.2, 2.4, 3.6 s.
        try Self.makeOutput(
            source: source,
            at: output,
            rungs: [Self.rungs[0], Rung(name: "120p", width: 160, height: 120, gop: 30)],
            audio: false
        )
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(
            report.failures.contains { $0.contains("240p starts a segment at 1.000 s, 120p does not") },
            "\(report.text)"
        )
        #expect(report.failures.contains { $0.contains("the master playlist names no audio group") })
        #expect(report.rungs.last.map { abs(($0.largestKeyframeInterval ?? 0) - 1.2) < 0.001 } == true)
    }

    @Test func openGOPKeyframesAreNotIDRs() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory, audio: false)
        let output = directory.file("hls")
        try Self.makeOutput(
            source: source,
            at: output,
            rungs: [Rung(name: "240p", width: 320, height: 240, openGOP: true)],
            audio: false
        )
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        // The segmenter cut at every keyframe, but only the first is an IDR: a player cannot start at the others.
        #expect(report.failures.count == 4, "\(report.text)")
        for segment in 1...3 {
            #expect(
                report.failures.contains {
                    $0.hasPrefix(String(format: "240p: segment_%05d.m4s does not start with an IDR frame", segment))
                }
            )
        }
        #expect(report.failures.contains { $0.hasPrefix("240p: keyframe interval of 4.000 s from 0.000 s") })
        #expect(report.rungs.first?.frames == 100, "B-frames and open GOPs still decode to every frame")
    }

    /// Segments of another size spliced in (their SPS in-band): reported, and the quality measure skips them
    /// instead of comparing planes of different sizes.
    @Test func aFrameSizeChangeInsideARenditionIsNamed() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory, audio: false)
        for (name, size) in [("small", "160x120"), ("large", "176x144")] {
            try run(
                "ffmpeg",
                [
                    "-hide_banner", "-loglevel", "error", "-y", "-i", source, "-c:v", "libx264", "-preset", "veryfast",
                    "-bf", "0", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-x264-params",
                    "repeat-headers=1", "-s", size, "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
                    "-hls_fmp4_init_filename", name + "_init.mp4", "-hls_segment_filename",
                    directory.file(name) + "_%05d.m4s", "-hls_playlist_type", "vod", directory.file(name + ".m3u8"),
                ]
            )
        }
        let output = directory.file("hls")
        try FileManager.default.createDirectory(atPath: output + "/120p", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: directory.file("small_init.mp4"), toPath: output + "/120p/init.mp4")
        for index in 0..<4 {
            let from = directory.file(String(format: "%@_%05d.m4s", index < 2 ? "small" : "large", index))
            try FileManager.default.copyItem(
                atPath: from,
                toPath: output + String(format: "/120p/segment_%05d.m4s", index)
            )
        }
        try Self.writeMediaPlaylist(
            (0..<4).map { .init(uri: String(format: "segment_%05d.m4s", $0), duration: 1) },
            to: output + "/120p/playlist.m3u8"
        )
        try HLSFixture.writeIFramePlaylist(folder: output + "/120p")
        let video = try HLSFixture.bitrates(folder: output + "/120p")
        let iFrames = try HLSFixture.bitrates(folder: output + "/120p", playlist: "iframes.m3u8")
        let codec = try HLSFixture.codec(output + "/120p/init.mp4")
        try
            ("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=\(video.peak),"
            + "AVERAGE-BANDWIDTH=\(video.average),CODECS=\"\(codec)\",FRAME-RATE=25.000\n120p/playlist.m3u8\n"
            + "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\(iFrames.peak),AVERAGE-BANDWIDTH=\(iFrames.average),"
            + "CODECS=\"\(codec)\",RESOLUTION=160x120,URI=\"120p/iframes.m3u8\"\n").write(
                toFile: output + "/master.m3u8",
                atomically: true,
                encoding: .utf8
            )

        let report = OutputVerifier.verify(source: source, hlsDirectory: output)
        #expect(
            report.failures == ["120p: frame 50 at 2.000 s is 176x144, the rendition starts at 160x120"],
            "\(report.text)"
        )
        #expect(report.rungs.first?.frames == 100)
        #expect(report.rungs.first?.psnrY.map { $0 > 30 } == true, "measured on the frames of the first size")
    }

    @Test func audioOutputForASilentSourceFails() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let withAudio = try Self.makeSource(directory)
        let silent = try Self.makeSource(directory, audio: false)
        let output = directory.file("hls")
        try Self.makeOutput(source: withAudio, at: output, rungs: [Self.rungs[1]])
        let report = OutputVerifier.verify(source: silent, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(report.failures == ["audio: the source has no audio but the output has an audio rendition"])
    }

    @Test func aMissingOrBrokenFolderIsAFailureLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory, audio: false)
        let missing = OutputVerifier.verify(source: source, hlsDirectory: directory.file("nothing"))
        #expect(missing.failures.count == 1)
        #expect(
            missing.failures.first?.contains(
                "master.m3u8 does not exist; pass the job's output folder (the one holding master.m3u8)"
            ) == true
        )

        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output, rungs: [Self.rungs[1]], audio: false)
        // A segment overwritten with garbage: decoding stops there, the report says so, nothing crashes.
        try Fixtures.makeGarbage(at: output + "/120p/segment_00002.m4s", bytes: 5000)
        let broken = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(!broken.passed)
        #expect(
            broken.failures.contains { $0.hasPrefix("120p: segment_00002.m4s has no video frames") },
            "\(broken.text)"
        )
        // Each segment is demuxed alone: the damage costs that segment's frames only.
        #expect(broken.failures.contains("120p: 75 frames decoded, the source has 100 (25 missing)"))
        // A truncated init segment.
        let initURL = URL(fileURLWithPath: output + "/120p/init.mp4")
        try Data(try Data(contentsOf: initURL).prefix(100)).write(to: initURL)
        let noInit = OutputVerifier.verify(source: source, hlsDirectory: output, options: .init(measureQuality: false))
        #expect(
            noInit.failures.contains {
                $0.hasPrefix("120p: no segment could be read as video with init.mp4")
            },
            "\(noInit.text)"
        )
        // A media playlist that is gone.
        try FileManager.default.removeItem(atPath: output + "/120p/playlist.m3u8")
        let noPlaylist = OutputVerifier.verify(
            source: source,
            hlsDirectory: output,
            options: .init(measureQuality: false)
        )
        #expect(
            noPlaylist.failures.contains {
                $0.hasPrefix("120p media playlist:")
                    && $0.hasSuffix("does not exist; the output is incomplete; transcode it again")
            }
        )
        let garbageSource = directory.file("garbage.mp4")
        try Fixtures.makeGarbage(at: garbageSource)
        let badSource = OutputVerifier.verify(source: garbageSource, hlsDirectory: output)
        #expect(badSource.failures.contains { $0.hasPrefix("source: cannot decode") })
    }

    /// The attributes Apple's HLS authoring spec asks of a master playlist, and the I-frame playlists, each broken
    /// in turn: every damage is named, and only it.
    @Test func iFramePlaylistsFrameRateAndBandwidthsAreChecked() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try Self.makeSource(directory, audio: false)
        let output = directory.file("hls")
        try Self.makeOutput(source: source, at: output, rungs: [Self.rungs[1]], audio: false)
        let options = VerificationOptions(measureQuality: false)
        let intact = OutputVerifier.verify(source: source, hlsDirectory: output, options: options)
        #expect(intact.failures == [], "\(intact.text)")
        #expect(abs((intact.rungs.first?.measuredFrameRate ?? 0) - 25) < 0.01)

        let masterPath = output + "/master.m3u8"
        let master = try String(contentsOfFile: masterPath, encoding: .utf8)
        func failures(master edited: String) throws -> [String] {
            try edited.write(toFile: masterPath, atomically: true, encoding: .utf8)
            defer { try? master.write(toFile: masterPath, atomically: true, encoding: .utf8) }
            return OutputVerifier.verify(source: source, hlsDirectory: output, options: options).failures
        }
        let variant = try #require(master.split(separator: "\n").first { $0.hasPrefix("#EXT-X-STREAM-INF:") })
        let attributes = try HLSAttributes(parsing: String(variant.dropFirst("#EXT-X-STREAM-INF:".count)))
        let peak = try #require(attributes["BANDWIDTH"].flatMap { Int($0) })
        let average = try #require(attributes["AVERAGE-BANDWIDTH"].flatMap { Int($0) })

        #expect(
            try failures(master: master.replacingOccurrences(of: "FRAME-RATE=25.000", with: "FRAME-RATE=30.000")) == [
                "master: 120p/playlist.m3u8: FRAME-RATE 30.000 is not within 1% of the measured 25.000 frames per "
                    + "second"
            ]
        )
        #expect(
            try failures(master: master.replacingOccurrences(of: ",FRAME-RATE=25.000", with: "")) == [
                "master: 120p/playlist.m3u8 has no valid FRAME-RATE"
            ]
        )
        #expect(
            try failures(master: master.replacingOccurrences(of: "BANDWIDTH=\(peak),", with: "BANDWIDTH=\(peak * 2),"))
                == [
                    "master: 120p/playlist.m3u8: BANDWIDTH \(peak * 2) is more than 10% above the measured peak "
                        + "segment bit rate \(peak); players would choose a lower rung than they can play"
                ]
        )
        let noAverage = try failures(master: master.replacingOccurrences(of: "AVERAGE-BANDWIDTH=\(average),", with: ""))
        #expect(noAverage == ["master: 120p/playlist.m3u8 has no valid AVERAGE-BANDWIDTH"])
        let noIFrames = try failures(
            master: master.split(separator: "\n").filter { !$0.contains("I-FRAME") }
                .joined(separator: "\n") + "\n"
        )
        #expect(
            noIFrames == [
                "master: 120p/playlist.m3u8 has no EXT-X-I-FRAME-STREAM-INF (I-frame playlist) beside it"
            ]
        )

        // The I-frame playlist itself: a byte range past the end of its segment, one that starts inside the mdat
        // (no moof: nothing a player can decode alone), and a lost EXT-X-I-FRAMES-ONLY tag.
        let iFramesPath = output + "/120p/iframes.m3u8"
        let iFrames = try String(contentsOfFile: iFramesPath, encoding: .utf8)
        let ranges = try HLSMediaPlaylist(parsing: iFrames).segments.map { try #require($0.byteRange) }
        #expect(ranges.count == 4)
        let sizes = try (0..<4).map { index in
            try #require(
                try FileManager.default.attributesOfItem(
                    atPath: output + String(format: "/120p/segment_%05d.m4s", index)
                )[
                    .size
                ] as? Int
            )
        }
        var damaged = iFrames.replacingOccurrences(
            of: "#EXT-X-BYTERANGE:\(ranges[1].count)@0\nsegment_00001",
            with: "#EXT-X-BYTERANGE:\(sizes[1])@8\nsegment_00001"
        )
        damaged = damaged.replacingOccurrences(
            of: "#EXT-X-BYTERANGE:\(ranges[2].count)@0\nsegment_00002",
            with: "#EXT-X-BYTERANGE:\(ranges[2].count)@\(ranges[2].count)\nsegment_00002"
        )
        damaged = damaged.replacingOccurrences(of: "#EXT-X-I-FRAMES-ONLY\n", with: "")
        try damaged.write(toFile: iFramesPath, atomically: true, encoding: .utf8)
        let report = OutputVerifier.verify(source: source, hlsDirectory: output, options: options)
        #expect(
            report.failures == [
                "120p/iframes.m3u8: no #EXT-X-I-FRAMES-ONLY",
                "120p/iframes.m3u8: segment_00001.m4s byte range \(sizes[1])@8 is outside the file's \(sizes[1]) bytes",
                "120p/iframes.m3u8: segment_00002.m4s byte range \(ranges[2].count)@\(ranges[2].count) does not hold "
                    + "a whole keyframe a player can decode alone",
            ],
            "\(report.text)"
        )
    }
}
