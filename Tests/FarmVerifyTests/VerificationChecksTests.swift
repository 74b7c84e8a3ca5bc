import FarmFormats
import FarmMedia
import FarmVerify
import Testing

@Suite("farm verify's checks, pure")
struct VerificationChecksTests {
    static let frame = 0.04
    static func times(_ range: Range<Int>) -> [Double] { range.map { Double($0) * Self.frame } }

    @Test func frameTimesMatchWithinHalfAFrame() {
        let source = Self.times(0..<100)
        let jittered = source.map { $0 + 0.019 }
        #expect(
            VerificationChecks.frameTimeFailures(
                rendition: "240p",
                source: source,
                output: jittered,
                frameDuration: Self.frame
            ).isEmpty
        )
        var shifted = source
        shifted[57] += 0.021
        let failures = VerificationChecks.frameTimeFailures(
            rendition: "240p",
            source: source,
            output: shifted,
            frameDuration: Self.frame
        )
        #expect(failures.count == 1)
        #expect(failures.first?.contains("frame 57 is at 2.301 s, the source's frame 57 at 2.280 s") == true)
    }

    @Test func missingFramesAreCountedAndTheFirstMismatchNamed() {
        let source = Self.times(0..<100)
        let output = Self.times(0..<50) + Self.times(75..<100)
        let failures = VerificationChecks.frameTimeFailures(
            rendition: "360p",
            source: source,
            output: output,
            frameDuration: Self.frame
        )
        #expect(failures.count == 2)
        #expect(failures.contains("360p: 75 frames decoded, the source has 100 (25 missing)"))
        #expect(failures.contains { $0.contains("frame 50 is at 3.000 s, the source's frame 50 at 2.000 s") })
        let extra = VerificationChecks.frameTimeFailures(
            rendition: "x",
            source: source,
            output: Self.times(0..<101),
            frameDuration: Self.frame
        )
        #expect(extra == ["x: 101 frames decoded, the source has 100 (1 extra)"])
    }

    @Test func seamsNeedTheNextFrameExactly() {
        func segment(_ index: Int, _ range: Range<Int>) -> VerificationChecks.SegmentMeasurement {
            .init(uri: "segment_\(index).m4s", frameTimes: Self.times(range), startsWithIDR: true)
        }
        let clean = [segment(0, 0..<25), segment(1, 25..<50), segment(2, 50..<60)]
        #expect(VerificationChecks.seamFailures(rendition: "240p", segments: clean, frameDuration: Self.frame).isEmpty)

        let gap = [segment(0, 0..<25), segment(1, 27..<50)]
        let gapFailures = VerificationChecks.seamFailures(rendition: "240p", segments: gap, frameDuration: Self.frame)
        #expect(gapFailures.count == 1)
        #expect(gapFailures.first?.contains("gap of 0.080 s (about 2 frame(s) missing) between segment_0.m4s") == true)

        let overlap = [segment(0, 0..<25), segment(1, 24..<50)]
        let overlapFailures = VerificationChecks.seamFailures(
            rendition: "240p",
            segments: overlap,
            frameDuration: Self.frame
        )
        #expect(overlapFailures.first?.contains("overlap of 0.040 s (about 1 frame(s) duplicated)") == true)

        let empty = [segment(0, 0..<25), segment(1, 0..<0), segment(2, 25..<50)]
        #expect(
            VerificationChecks.seamFailures(rendition: "a", segments: empty, frameDuration: Self.frame) == [
                "a: segment_1.m4s has no video frames (it is empty or damaged)"
            ]
        )
    }

    @Test func everySegmentMustStartWithAnIDR() {
        let segments: [VerificationChecks.SegmentMeasurement] = [
            .init(uri: "s0", frameTimes: [0], startsWithIDR: true),
            .init(uri: "s1", frameTimes: [1], startsWithIDR: false),
            .init(uri: "s2", frameTimes: [2], startsWithIDR: nil),
            .init(uri: "s3", frameTimes: [], startsWithIDR: nil),
        ]
        let failures = VerificationChecks.idrFailures(rendition: "240p", segments: segments)
        #expect(failures.count == 2)
        #expect(failures[0].hasPrefix("240p: s1 does not start with an IDR frame"))
        #expect(failures[1] == "240p: could not tell whether s2 starts with an IDR frame")
    }

    @Test func keyframeIntervals() {
        let keyframes = [0, 2, 4.4, 6, 8]
        let largest = VerificationChecks.largestInterval(keyframes)
        #expect(abs((largest?.seconds ?? 0) - 2.4) < 1e-9)
        #expect(largest?.from == 2)
        #expect(VerificationChecks.largestInterval([1]) == nil)
        // The last GOP counts up to the end of the stream.
        #expect(VerificationChecks.largestInterval([0], streamEnd: 4)?.seconds == 4)
        #expect(VerificationChecks.largestInterval([0, 1, 2], streamEnd: 5.5)?.from == 2)
        #expect(VerificationChecks.largestInterval([0, 2], streamEnd: 2.5)?.seconds == 2)
        let failures = VerificationChecks.keyframeIntervalFailures(
            rendition: "240p",
            keyframeTimes: keyframes,
            maximum: 2
        )
        #expect(
            failures == [
                "240p: keyframe interval of 2.400 s from 2.000 s exceeds the maximum 2.000 s (--max-keyframe-interval)"
            ]
        )
        #expect(
            VerificationChecks.keyframeIntervalFailures(rendition: "240p", keyframeTimes: keyframes, maximum: 2.5)
                .isEmpty
        )
        #expect(
            VerificationChecks.keyframeIntervalFailures(rendition: "240p", keyframeTimes: [0, 2, 4], maximum: 2).isEmpty
        )
    }

    @Test func segmentStartsAlignAcrossRenditions() {
        let aligned = [("240p", [0, 1, 2.0] as [Double?]), ("360p", [0, 1.0005, 2])]
        #expect(VerificationChecks.alignmentFailures(aligned.map { (name: $0.0, segmentStarts: $0.1) }).isEmpty)
        let shifted = [("240p", [0, 1, 2.0] as [Double?]), ("360p", [0, 1.2, 2.4])]
        let failures = VerificationChecks.alignmentFailures(shifted.map { (name: $0.0, segmentStarts: $0.1) })
        #expect(
            failures == [
                "segment starts differ between 240p and 360p: 240p starts a segment at 1.000 s, 360p does not (first "
                    + "mismatch; keyframes must be aligned across renditions)"
            ]
        )
        // The first rendition lost a segment: the report says which one has the start the other lacks.
        let damaged = [("240p", [0, 1, 3.0] as [Double?]), ("360p", [0, 1, 2, 3])]
        let damagedFailures = VerificationChecks.alignmentFailures(damaged.map { (name: $0.0, segmentStarts: $0.1) })
        #expect(damagedFailures.count == 2)
        #expect(damagedFailures.first == "360p has 4 segments, 240p has 3")
        #expect(damagedFailures.last?.contains("360p starts a segment at 2.000 s, 240p does not") == true)
        let missing = [("240p", [0, 1, 2.0] as [Double?]), ("360p", [0, nil, 2])]
        #expect(VerificationChecks.alignmentFailures(missing.map { (name: $0.0, segmentStarts: $0.1) }).count == 1)
    }

    @Test func audioDurationAndSync() {
        let source = VerificationChecks.AudioMeasurement(start: 0, duration: 4.011)
        #expect(
            VerificationChecks.audioFailures(
                source: source,
                sourceVideoStart: 0,
                output: .init(start: 0.02, duration: 4.032),
                outputVideoStart: 0,
                outputHasAudioGroup: true
            ).isEmpty
        )
        let late = VerificationChecks.audioFailures(
            source: source,
            sourceVideoStart: 0,
            output: .init(start: 0, duration: 3.9),
            outputVideoStart: 0.08,
            outputHasAudioGroup: true
        )
        #expect(late.count == 2)
        #expect(late[0] == "audio: duration 3.900 s, the source's 4.011 s (tolerance 0.050 s)")
        #expect(late[1].contains("out of sync by -0.080 s"))

        // Source audio from 1.0 s to 5.011 s: padded with silence from 0 s to end at 5.011 s is in sync; the same
        // sound moved to 0 s (ending at 4.011 s) is not.
        let startsLate = VerificationChecks.AudioMeasurement(start: 1, duration: 4.011)
        #expect(
            VerificationChecks.audioFailures(
                source: startsLate,
                sourceVideoStart: 0,
                output: .init(start: 0, duration: 5.03),
                outputVideoStart: 0,
                outputHasAudioGroup: true
            ).isEmpty
        )
        #expect(
            VerificationChecks.audioFailures(
                source: startsLate,
                sourceVideoStart: 0,
                output: .init(start: 0, duration: 4.011),
                outputVideoStart: 0,
                outputHasAudioGroup: true
            ) == [
                "audio: starts 0.000 s after the video, in the source 1.000 s: out of sync by -1.000 s (tolerance 0.050 s)"
            ]
        )
        // Source audio from -0.76 s to 5.33 s (it starts before the first video frame): cut at the video's start and
        // ending at 5.33 s is in sync; the same length moved to start with the video (ending 0.76 s late) is not.
        let startsEarly = VerificationChecks.AudioMeasurement(start: -0.76, duration: 6.09)
        #expect(
            VerificationChecks.audioFailures(
                source: startsEarly,
                sourceVideoStart: 0,
                output: .init(start: 0, duration: 5.35),
                outputVideoStart: 0,
                outputHasAudioGroup: true
            ).isEmpty
        )
        let shifted = VerificationChecks.audioFailures(
            source: startsEarly,
            sourceVideoStart: 0,
            output: .init(start: 0, duration: 6.09),
            outputVideoStart: 0,
            outputHasAudioGroup: true
        )
        #expect(shifted.contains { $0.contains("out of sync by 0.760 s") }, "\(shifted)")
        #expect(
            VerificationChecks.audioFailures(
                source: nil,
                sourceVideoStart: 0,
                output: nil,
                outputVideoStart: 0,
                outputHasAudioGroup: true
            ) == ["audio: the source has no audio but the output has an audio rendition"]
        )
        #expect(
            VerificationChecks.audioFailures(
                source: nil,
                sourceVideoStart: 0,
                output: nil,
                outputVideoStart: 0,
                outputHasAudioGroup: false
            ).isEmpty
        )
        #expect(
            VerificationChecks.audioFailures(
                source: source,
                sourceVideoStart: 0,
                output: nil,
                outputVideoStart: 0,
                outputHasAudioGroup: false
            ).first?.contains("names no audio group") == true
        )
    }

    @Test func audioFormatIsAACLowComplexity48kHzStereo() {
        let delivered = VerificationChecks.AudioFormat.delivered
        #expect(VerificationChecks.audioFormatFailures(delivered).isEmpty)
        for other in [
            VerificationChecks.AudioFormat(codec: "aac", profile: "HE-AAC", sampleRate: 48_000, channels: 2),
            VerificationChecks.AudioFormat(codec: "aac", profile: "LC", sampleRate: 44_100, channels: 2),
            VerificationChecks.AudioFormat(codec: "aac", profile: "LC", sampleRate: 48_000, channels: 6),
            VerificationChecks.AudioFormat(codec: "opus", profile: nil, sampleRate: 48_000, channels: 2),
        ] {
            #expect(
                VerificationChecks.audioFormatFailures(other) == [
                    "audio: the segments hold \(other); the farm delivers aac LC, 48000 Hz, 2 channels"
                ]
            )
        }
        #expect(
            "\(VerificationChecks.AudioFormat(codec: "opus", profile: nil, sampleRate: 48_000, channels: 1))"
                == "opus, 48000 Hz, 1 channel"
        )
    }

    @Test func audioSeamsFollowOnExactly() {
        let frame = 1024.0 / 48000
        func packets(segment: Int, from first: Int, count: Int) -> [VerificationChecks.AudioPacket] {
            (first..<(first + count)).map { .init(segment: segment, start: Double($0) * frame, duration: frame) }
        }
        let uris = ["a0.m4s", "a1.m4s", "a2.m4s"]
        let clean = packets(segment: 0, from: 0, count: 94) + packets(segment: 1, from: 94, count: 94)
        #expect(VerificationChecks.audioSeamFailures(clean, segmentURIs: uris).isEmpty)
        let gap = packets(segment: 0, from: 0, count: 94) + packets(segment: 2, from: 188, count: 94)
        #expect(
            VerificationChecks.audioSeamFailures(gap, segmentURIs: uris) == [
                "audio: gap of 2.005 s between a0.m4s, ending at 2.005 s, and a2.m4s, starting at 4.011 s"
            ]
        )
        let repeated = packets(segment: 0, from: 0, count: 94) + packets(segment: 1, from: 93, count: 94)
        #expect(
            VerificationChecks.audioSeamFailures(repeated, segmentURIs: uris).first?.hasPrefix(
                "audio: overlap of 0.021 s"
            ) == true
        )
    }

    static func media(target: Int?, durations: [Double], vod: Bool = true, end: Bool = true) -> HLSMediaPlaylist {
        HLSMediaPlaylist(
            version: 7,
            targetDuration: target,
            mediaSequence: 0,
            playlistType: vod ? "VOD" : nil,
            independentSegments: true,
            hasEndList: end,
            mapURI: "init.mp4",
            segments: durations.enumerated().map { .init(uri: "s\($0.offset).m4s", duration: $0.element) }
        )
    }

    @Test func mediaPlaylistRules() {
        let good = Self.media(target: 3, durations: [2.04, 2.04, 0.52])
        #expect(
            VerificationChecks.mediaPlaylistFailures(
                name: "240p",
                playlist: good,
                measuredDurations: [2.04, 2.04, 0.52],
                tolerance: 0.04
            ).isEmpty
        )
        // RFC 8216: 2.6 rounds to 3 > 2; and farm writes the rounded-up maximum.
        let small = Self.media(target: 2, durations: [2.6, 1])
        let smallFailures = VerificationChecks.mediaPlaylistFailures(
            name: "240p",
            playlist: small,
            measuredDurations: [nil, nil],
            tolerance: 0.04
        )
        #expect(smallFailures.count == 2)
        #expect(smallFailures[0].contains("more than TARGETDURATION 2"))
        #expect(smallFailures[1] == "240p: TARGETDURATION is 2, the longest EXTINF rounded up is 3")
        // 2.4 rounds to 2: allowed by the RFC, but not what farm writes.
        let rounded = Self.media(target: 2, durations: [2.4])
        #expect(
            VerificationChecks.mediaPlaylistFailures(
                name: "a",
                playlist: rounded,
                measuredDurations: [2.4],
                tolerance: 0.04
            ) == ["a: TARGETDURATION is 2, the longest EXTINF rounded up is 3"]
        )
        let live = Self.media(target: nil, durations: [2], vod: false, end: false)
        let liveFailures = VerificationChecks.mediaPlaylistFailures(
            name: "a",
            playlist: live,
            measuredDurations: [2.1],
            tolerance: 0.04
        )
        #expect(liveFailures.count == 4)
        #expect(liveFailures.contains("a: #EXT-X-PLAYLIST-TYPE is missing, not VOD"))
        #expect(liveFailures.contains("a: no #EXT-X-TARGETDURATION"))
        #expect(liveFailures.contains { $0.contains("no #EXT-X-ENDLIST") })
        #expect(liveFailures.contains("a: s0.m4s has EXTINF 2.0 s but lasts 2.100 s (tolerance 0.040 s)"))
    }

    @Test func masterRules() throws {
        let master = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"aac\"\n240p/playlist.m3u8\n"
        )
        let failures = VerificationChecks.masterFailures(master)
        #expect(failures.count == 4)
        #expect(failures.contains("master: 240p/playlist.m3u8 has no valid AVERAGE-BANDWIDTH"))
        #expect(failures.contains("master: no #EXT-X-INDEPENDENT-SEGMENTS"))
        #expect(failures.contains("master: 240p/playlist.m3u8 has no CODECS"))
        #expect(failures.contains { $0.contains("names audio group aac") })
    }

    @Test func codecsNameWhatTheInitSegmentsHold() throws {
        let master = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001E, mp4a.40.2\"\nv/p.m3u8\n"
        )
        let variant = try #require(master.variants.first)
        #expect(VerificationChecks.codecsFailures(variant: variant, expected: ["avc1.64001e", "mp4a.40.2"]).isEmpty)
        #expect(
            VerificationChecks.codecsFailures(variant: variant, expected: ["avc1.640028", "mp4a.40.2"]) == [
                "master: v/p.m3u8: CODECS=\"avc1.64001E, mp4a.40.2\" does not name avc1.640028, which the init "
                    + "segments hold"
            ]
        )
    }

    @Test func peakBitrateFollowsRFC8216() {
        // Target 2 s: runs of 1 to 3 s count. The short last segment alone (0.2 s, 2 Mb/s) is too short to count;
        // with the one before it, 150 kB over 1.2 s is the peak, 1 Mb/s.
        let segments: [(duration: Double, bytes: Int)] = [(2, 100_000), (2, 200_000), (1, 100_000), (0.2, 50_000)]
        #expect(SegmentBitrate.peak(segments, targetDuration: 2) == 1_000_000)
        #expect(SegmentBitrate.average(segments) == 692_308)
        // A tiny video: no run reaches half the target, the average stands in.
        #expect(SegmentBitrate.peak([(0.5, 1000)], targetDuration: 6) == 16_000)
    }

    @Test func bandwidthAgainstMeasurement() throws {
        let master = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=950,AVERAGE-BANDWIDTH=500,CODECS=\"avc1\"\nv/p.m3u8\n"
        )
        let variant = try #require(master.variants.first)
        let exact = VerificationChecks.bandwidthFailures(variant: variant, measuredPeak: 958, measuredAverage: 500)
        #expect(exact.failures.isEmpty && exact.notes.isEmpty, "8 b/s below is measurement noise")
        let within = VerificationChecks.bandwidthFailures(variant: variant, measuredPeak: 1000, measuredAverage: 520)
        #expect(within.failures.isEmpty)
        #expect(
            within.notes == ["v/p.m3u8: BANDWIDTH 950 is below the measured peak segment bit rate 1000 (within 10%)"]
        )
        let below = VerificationChecks.bandwidthFailures(variant: variant, measuredPeak: 1100, measuredAverage: 600)
        #expect(below.failures.count == 2)
        #expect(
            below.failures[0].contains(
                "BANDWIDTH 950 is below the measured peak segment bit rate 1100 by more than 10%"
            )
        )
        #expect(below.failures[1].contains("AVERAGE-BANDWIDTH 500 is not within 10% of the measured average 600"))
    }

    @Test func bandwidthFarAboveThePeakFails() throws {
        let master = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1110,AVERAGE-BANDWIDTH=500\nv/p.m3u8\n"
        )
        let variant = try #require(master.variants.first)
        #expect(
            VerificationChecks.bandwidthFailures(variant: variant, measuredPeak: 1010, measuredAverage: 500).failures
                == []
        )
        #expect(
            VerificationChecks.bandwidthFailures(variant: variant, measuredPeak: 1000, measuredAverage: 500).failures
                == [
                    "master: v/p.m3u8: BANDWIDTH 1110 is more than 10% above the measured peak segment bit rate 1000; "
                        + "players would choose a lower rung than they can play"
                ]
        )
    }

    @Test func frameRateWithinOnePercent() throws {
        let master = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=29.970\na/p.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1\nb/p.m3u8\n"
        )
        let declared = master.variants[0]
        #expect(VerificationChecks.frameRateFailures(variant: declared, measured: 30000.0 / 1001).isEmpty)
        #expect(VerificationChecks.frameRateFailures(variant: declared, measured: 29.8).isEmpty)
        #expect(
            VerificationChecks.frameRateFailures(variant: declared, measured: 25) == [
                "master: a/p.m3u8: FRAME-RATE 29.970 is not within 1% of the measured 25.000 frames per second"
            ]
        )
        #expect(
            VerificationChecks.frameRateFailures(variant: master.variants[1], measured: 25) == [
                "master: b/p.m3u8 has no valid FRAME-RATE"
            ]
        )
    }

    @Test func everyVariantHasAnIFrameStream() throws {
        let master = try HLSMasterPlaylist(parsing: 
            """
            #EXTM3U
            #EXT-X-STREAM-INF:BANDWIDTH=1
            720p/playlist.m3u8
            #EXT-X-STREAM-INF:BANDWIDTH=1
            360p/playlist.m3u8
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,CODECS="avc1.64001F",RESOLUTION=1280x720,URI="720p/iframes.m3u8"
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="240p/iframes.m3u8"
            """
        )
        #expect(master.iFrameStreams.map(\.uri) == ["720p/iframes.m3u8", "240p/iframes.m3u8"])
        #expect(
            VerificationChecks.iFrameStreamFailures(master) == [
                "master: 360p/playlist.m3u8 has no EXT-X-I-FRAME-STREAM-INF (I-frame playlist) beside it"
            ]
        )
        let incomplete = try HLSMasterPlaylist(parsing: 
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/playlist.m3u8\n"
                + "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"240p/iframes.m3u8\"\n"
        )
        #expect(
            VerificationChecks.iFrameStreamFailures(incomplete) == [
                "master: the EXT-X-I-FRAME-STREAM-INF of 240p/iframes.m3u8 has no CODECS",
                "master: the EXT-X-I-FRAME-STREAM-INF of 240p/iframes.m3u8 has no RESOLUTION",
            ]
        )
    }

    @Test func iFramePlaylistEntries() throws {
        let playlist = try HLSMediaPlaylist(parsing: 
            """
            #EXTM3U
            #EXT-X-VERSION:3
            #EXT-X-TARGETDURATION:2
            #EXTINF:2.0,
            #EXT-X-BYTERANGE:100@0
            s0.m4s
            #EXTINF:2.0,
            s1.m4s
            """
        )
        #expect(playlist.segments.map(\.byteRange) == [0..<100, nil])
        typealias Entry = VerificationChecks.IFrameEntry
        let entries = [
            Entry(uri: "s0.m4s", byteRange: 0..<100, fileSize: 5000, holdsKeyframe: true),
            Entry(uri: "s1.m4s", byteRange: nil, fileSize: 5000, holdsKeyframe: nil),
            Entry(uri: "s2.m4s", byteRange: 4900..<5100, fileSize: 5000, holdsKeyframe: nil),
            Entry(uri: "s3.m4s", byteRange: 10..<20, fileSize: 5000, holdsKeyframe: false),
            Entry(uri: "s4.m4s", byteRange: 0..<10, fileSize: nil, holdsKeyframe: nil),
        ]
        #expect(
            VerificationChecks.iFramePlaylistFailures(name: "i", playlist: playlist, entries: entries, needsMap: true)
                == [
                    "i: no #EXT-X-I-FRAMES-ONLY",
                    "i: #EXT-X-VERSION is 3; byte ranges need version 4 or later",
                    "i: no #EXT-X-MAP init segment",
                    "i: s1.m4s has no #EXT-X-BYTERANGE; an I-frame entry must name its bytes",
                    "i: s2.m4s byte range 200@4900 is outside the file's 5000 bytes",
                    "i: s3.m4s byte range 10@10 does not hold a whole keyframe a player can decode alone",
                    "i: s4.m4s is missing or unreadable",
                ]
        )
        #expect(
            VerificationChecks.iFramePlaylistFailures(
                name: "i",
                playlist: playlist,
                entries: Array(entries.prefix(1)),
                needsMap: false
            ).count == 2
        )
    }

    @Test func minimumPSNR() {
        #expect(VerificationChecks.qualityFailures(rendition: "a", psnrY: 30, minimum: nil).isEmpty)
        #expect(VerificationChecks.qualityFailures(rendition: "a", psnrY: 40, minimum: 35).isEmpty)
        #expect(
            VerificationChecks.qualityFailures(rendition: "a", psnrY: 30, minimum: 35) == [
                "a: PSNR-Y 30.00 dB is below --min-psnr 35.0"
            ]
        )
        #expect(VerificationChecks.qualityFailures(rendition: "a", psnrY: .infinity, minimum: 35).isEmpty)
    }

    @Test func nalUnitTypesTellIDRs() {
        // avcC with 4-byte lengths; an access unit with AUD (9), SEI (6) and an IDR slice (5).
        let avcC: [UInt8] = [1, 0x64, 0, 0x1F, 0xFF, 0xE1]
        #expect(NALUnits.lengthSize(configuration: avcC, codec: .h264) == 4)
        #expect(NALUnits.lengthSize(configuration: [0, 0, 0, 1], codec: .h264) == nil, "Annex B is not avcC")
        let idr: [UInt8] = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 3, 0x65, 0x88, 0x84]
        #expect(NALUnits.types(in: idr, lengthSize: 4, codec: .h264) == [9, 6, 5])
        #expect(NALUnits.isIDR(idr, lengthSize: 4, codec: .h264) == true)
        let nonIDRIntra: [UInt8] = [0, 0, 0, 3, 0x41, 0x9A, 0x00]
        #expect(NALUnits.isIDR(nonIDRIntra, lengthSize: 4, codec: .h264) == false)
        #expect(NALUnits.isIDR([0, 0, 0, 9, 0x65], lengthSize: 4, codec: .h264) == nil, "a length past the end")
        // HEVC: IDR_W_RADL is type 19, header byte 0x26; CRA (21) is not an IDR.
        #expect(NALUnits.isIDR([0, 0, 0, 2, 0x26, 0x01], lengthSize: 4, codec: .hevc) == true)
        #expect(NALUnits.isIDR([0, 0, 0, 2, 0x2A, 0x01], lengthSize: 4, codec: .hevc) == false)
    }
}

@Suite("farm verify's report")
struct VerificationReportTests {
    @Test func passingReportShowsTheMeasures() {
        var report = VerificationReport(source: "in.mp4", hlsDirectory: "out")
        report.sourceFrames = 100
        report.sourceFrameRate = 25
        report.sourceAudioDuration = 4.011
        report.outputAudioDuration = 4.032
        report.sourceAudioOffset = 0
        report.outputAudioOffset = 0.021
        var rung = VerificationReport.Rung(name: "240p")
        rung.width = 426
        rung.height = 240
        rung.frames = 100
        rung.segments = 2
        rung.largestKeyframeInterval = 2
        rung.measuredPeakBitrate = 461_934
        rung.declaredBandwidth = 461_934
        rung.psnrY = .infinity
        rung.psnrYUV = 41.234
        rung.ssimY = 0.99123
        report.rungs = [rung]
        #expect(report.passed)
        let lines = report.text.split(separator: "\n").map(String.init)
        #expect(lines.first == "farm verify in.mp4 against out")
        #expect(lines.contains("source: 100 video frames at 25.000 fps, audio 4.011 s"))
        #expect(lines.contains { $0.hasPrefix("240p    426x240    100    2        2.000 s     461       461k") })
        #expect(lines.contains { $0.hasSuffix("inf     41.23     0.9912") })
        #expect(lines.contains("audio: 4.032 s (source 4.011 s), starts +0.021 s from the video (source +0.000 s)"))
        #expect(lines.last == "PASSED: every check holds")
    }

    @Test func failingReportListsEveryFailure() {
        var report = VerificationReport(source: "in.mp4", hlsDirectory: "out")
        report.failures = ["master playlist: out/master.m3u8 does not exist", "second"]
        report.notes = ["a note"]
        #expect(!report.passed)
        let text = report.text
        #expect(!text.contains("source:"), "the source was not read")
        #expect(!text.contains("quality:"))
        #expect(
            text.hasSuffix(
                "note: a note\nFAILED: 2 check(s):\n  - master playlist: out/master.m3u8 does not exist\n  - second"
            )
        )
    }
}
