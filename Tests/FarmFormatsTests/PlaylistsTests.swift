import FarmFormats
import Testing

@Suite("Playlists")
struct PlaylistsTests {
    static func segments(_ durations: [Double], bytes: [Int64], frames: [Int]) -> [Playlists.Segment] {
        zip(durations, zip(bytes, frames)).enumerated().map { index, element in
            Playlists.Segment(
                uri: "segment_\(index).m4s",
                duration: element.0,
                bytes: element.1.0,
                frames: element.1.1
            )
        }
    }

    /// 14.25 s of 24 fps video in three segments of 6, 6.25 and 2 s: 1.0, 1.2 and 0.8 Mbit/s.
    static let video720 = Playlists.MediaRendition(
        name: "720p",
        width: 1280,
        height: 720,
        codecs: "avc1.64001F",
        segments: segments([6.0, 6.25, 2.0], bytes: [750_000, 937_500, 200_000], frames: [144, 150, 48])
    )

    /// The same timeline at 29.965 fps (427 frames in 14.25 s): 0.4, 0.48 and 0.2 Mbit/s.
    static let video360 = Playlists.MediaRendition(
        name: "360p",
        width: 640,
        height: 360,
        codecs: "avc1.64001E",
        segments: segments([6.0, 6.25, 2.0], bytes: [300_000, 375_000, 50_000], frames: [180, 187, 60])
    )

    /// AAC at 32, 32 and 40 kbit/s.
    static let audio = Playlists.MediaRendition(
        name: "audio",
        width: 0,
        height: 0,
        codecs: "mp4a.40.2",
        segments: segments([6.0, 6.25, 2.0], bytes: [24_000, 25_000, 10_000], frames: [0, 0, 0]),
        channels: 2
    )

    static func lines(_ playlist: String) -> [String] {
        playlist.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The attributes of an `#EXT-X-STREAM-INF` line, splitting on commas outside quotes.
    static func attributes(_ line: String) -> [String: String] {
        let list = line.drop { $0 != ":" }.dropFirst()
        var result: [String: String] = [:]
        var current = ""
        var quoted = false
        for character in list + "," {
            if character == "\"" { quoted.toggle() }
            if character == ",", !quoted {
                let parts = current.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { result[parts[0]] = parts[1] }
                current = ""
            } else {
                current.append(character)
            }
        }
        return result
    }

    @Test("media playlist: VOD, version 7, init map, exact durations, end list")
    func mediaPlaylist() {
        let playlist = Playlists.media(Self.video720.segments)
        #expect(
            Self.lines(playlist) == [
                "#EXTM3U",
                "#EXT-X-VERSION:7",
                "#EXT-X-TARGETDURATION:7",
                "#EXT-X-MEDIA-SEQUENCE:0",
                "#EXT-X-PLAYLIST-TYPE:VOD",
                "#EXT-X-INDEPENDENT-SEGMENTS",
                "#EXT-X-MAP:URI=\"init.mp4\"",
                "#EXTINF:6.000000,",
                "segment_0.m4s",
                "#EXTINF:6.250000,",
                "segment_1.m4s",
                "#EXTINF:2.000000,",
                "segment_2.m4s",
                "#EXT-X-ENDLIST",
                "",
            ]
        )
    }

    @Test(
        "target duration is the longest segment rounded up",
        arguments: [
            ([6.0, 6.0, 4.04], 6),
            ([6.0, 6.2, 2.0], 7),
            ([2.002, 2.002, 1.0], 3),
            ([0.4], 1),
        ]
    )
    func targetDuration(durations: [Double], target: Int) {
        let segments = Self.segments(
            durations,
            bytes: durations.map { _ in 1000 },
            frames: durations.map { _ in 25 }
        )
        let lines = Self.lines(Playlists.media(segments, initURI: "init_720p.mp4"))
        #expect(lines.contains("#EXT-X-TARGETDURATION:\(target)"))
        #expect(lines.contains("#EXT-X-MAP:URI=\"init_720p.mp4\""))
        // Every EXTINF is the measured duration with six decimals, and never above the target duration.
        let extinf = lines.filter { $0.hasPrefix("#EXTINF:") }
        #expect(extinf == durations.map { "#EXTINF:" + Self.sixDecimals($0) + "," })
        for duration in durations { #expect(duration <= Double(target)) }
    }

    static func sixDecimals(_ value: Double) -> String {
        let micro = Int((value * 1_000_000).rounded())
        let fraction = String(micro % 1_000_000)
        return "\(micro / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }

    @Test("EXTINF keeps six decimals of a non-integer duration")
    func extinfPrecision() {
        let segments = Self.segments([6.2, 4.004_004], bytes: [1, 1], frames: [1, 1])
        let lines = Self.lines(Playlists.media(segments))
        #expect(lines.filter { $0.hasPrefix("#EXTINF:") } == ["#EXTINF:6.200000,", "#EXTINF:4.004004,"])
    }

    @Test("master with audio: one variant per video rendition, bandwidths of video plus audio")
    func masterWithAudio() throws {
        let playlist = Playlists.master(video: [Self.video720, Self.video360], audio: Self.audio)
        let lines = Self.lines(playlist)
        #expect(lines.first == "#EXTM3U")
        #expect(lines.contains("#EXT-X-VERSION:7"))
        #expect(lines.contains("#EXT-X-INDEPENDENT-SEGMENTS"))
        #expect(playlist.hasSuffix("\n"))

        let media = lines.filter { $0.hasPrefix("#EXT-X-MEDIA:") }
        #expect(
            media == [
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\",DEFAULT=YES,AUTOSELECT=YES,"
                    + "CHANNELS=\"2\",URI=\"audio/playlist.m3u8\""
            ]
        )

        var mono = Self.audio
        mono.channels = 1
        #expect(Playlists.master(video: [Self.video360], audio: mono).contains(",CHANNELS=\"1\",URI="))

        let variants = lines.filter { $0.hasPrefix("#EXT-X-STREAM-INF:") }
        try #require(variants.count == 2)

        // Target duration 7 s, so RFC 8216 peaks are over runs of 3.5 to 10.5 s.
        // 720p: peak 1_200_000 (937_500 B in 6.25 s), average 1_887_500 B × 8 / 14.25 s = 1_059_649.1;
        // audio: the 2 s segment alone is too short, so its peak is segments 1+2: 35_000 B × 8 / 8.25 s = 33_939.4;
        // average 59_000 B × 8 / 14.25 s = 33_122.8. Each rounded up: BANDWIDTH is never below the real peak
        // (1_233_939.4 here; truncating gave 1_233_939, a bit per second short).
        let hd = Self.attributes(variants[0])
        #expect(hd["BANDWIDTH"] == "1233940")
        #expect(hd["AVERAGE-BANDWIDTH"] == "1092773")
        #expect(hd["CODECS"] == "\"avc1.64001F,mp4a.40.2\"")
        #expect(hd["RESOLUTION"] == "1280x720")
        #expect(hd["FRAME-RATE"] == "24.000")
        #expect(hd["AUDIO"] == "\"audio\"")

        // 360p: peak 480_000, average 725_000 B × 8 / 14.25 s = 407_017.5; 427 frames / 14.25 s = 29.9649.
        let sd = Self.attributes(variants[1])
        #expect(sd["BANDWIDTH"] == "513940")
        #expect(sd["AVERAGE-BANDWIDTH"] == "440141")
        #expect(sd["CODECS"] == "\"avc1.64001E,mp4a.40.2\"")
        #expect(sd["RESOLUTION"] == "640x360")
        #expect(sd["FRAME-RATE"] == "29.965")
        #expect(sd["AUDIO"] == "\"audio\"")
    }

    @Test("master without audio: no audio group, video-only bandwidth and codecs")
    func masterWithoutAudio() throws {
        let playlist = Playlists.master(video: [Self.video720], audio: nil)
        let lines = Self.lines(playlist)
        #expect(!playlist.contains("EXT-X-MEDIA:"))
        #expect(!playlist.contains("AUDIO="))
        let variants = lines.filter { $0.hasPrefix("#EXT-X-STREAM-INF:") }
        try #require(variants.count == 1)
        let attributes = Self.attributes(variants[0])
        #expect(attributes["BANDWIDTH"] == "1200000")
        #expect(attributes["AVERAGE-BANDWIDTH"] == "1059650")
        #expect(attributes["CODECS"] == "\"avc1.64001F\"")
        #expect(attributes["RESOLUTION"] == "1280x720")
        #expect(attributes["FRAME-RATE"] == "24.000")
    }

    @Test("every URI in the master is <rendition>/playlist.m3u8, each variant followed by its URI")
    func masterURIs() throws {
        let renditions = [Self.video720, Self.video360]
        let lines = Self.lines(Playlists.master(video: renditions, audio: Self.audio))
        let uriLines = lines.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(uriLines == ["720p/playlist.m3u8", "360p/playlist.m3u8"])
        for (index, line) in lines.enumerated() where line.hasPrefix("#EXT-X-STREAM-INF:") {
            let next = try #require(lines.indices.contains(index + 1) ? lines[index + 1] : nil)
            #expect(next.hasSuffix("/playlist.m3u8") && !next.hasPrefix("#"), "a variant is not followed by its URI")
        }
        // URI attributes (the audio group's) follow the same layout.
        let quotedURIs = lines.compactMap { line -> String? in
            guard let range = line.range(of: "URI=\"") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }
        #expect(quotedURIs == ["audio/playlist.m3u8"])
    }

    /// RFC 8216 §4.3.4.2: BANDWIDTH is the peak segment bit rate, "the largest bit rate of any contiguous set of
    /// segments whose total duration is between 0.5 and 1.5 times the target duration". A short tail segment that
    /// opens with a keyframe has a huge bit rate on its own and must be measured together with its neighbour.
    @Test("a short last segment does not inflate BANDWIDTH beyond the RFC 8216 peak segment bit rate")
    func shortTailSegmentPeak() {
        // 6 s segments at 1 Mbit/s, then a one-frame tail (1/24 s) holding a 20 kB keyframe: 3.84 Mbit/s alone.
        let rendition = Playlists.MediaRendition(
            name: "240p",
            width: 426,
            height: 240,
            codecs: "avc1.64001E",
            segments: Self.segments([6.0, 6.0, 1.0 / 24], bytes: [750_000, 750_000, 20_000], frames: [144, 144, 1])
        )
        // Target duration 6: the sets within [3 s, 9 s] are {0}, {1} and {1, 2}; the peak is {1, 2}:
        // 770_000 B × 8 / 6.041667 s = 1_019_586.2 bit/s, rounded up.
        let rfcPeak = 1_019_587
        do {
            #expect(
                abs(rendition.peakBitrate - rfcPeak) <= 1,
                "peak \(rendition.peakBitrate), RFC 8216 peak \(rfcPeak)"
            )
            let variant = Self.lines(Playlists.master(video: [rendition], audio: nil)).first {
                $0.hasPrefix("#EXT-X-STREAM-INF:")
            }
            let bandwidth = variant.map(Self.attributes)?["BANDWIDTH"].flatMap { Int($0) } ?? 0
            #expect(abs(bandwidth - rfcPeak) <= 1, "BANDWIDTH \(bandwidth), RFC 8216 peak \(rfcPeak)")
        }
    }

    @Test("bitrates and frame rate of a rendition")
    func renditionMeasures() {
        #expect(Self.video720.totalDuration == 14.25)
        #expect(Self.video720.totalBytes == 1_887_500)
        #expect(Self.video720.peakBitrate == 1_200_000)
        #expect(Self.video720.averageBitrate == 1_059_650)
        #expect(Self.video720.frameRate == 24)
        let empty = Playlists.MediaRendition(name: "x", width: 1, height: 1, codecs: "", segments: [])
        #expect(empty.peakBitrate == 0)
        #expect(empty.averageBitrate == 0)
        #expect(empty.frameRate == 0)
    }

    /// The 720p timeline with each segment's leading IDR: 30, 40 and 20 kB from the segment's start.
    static var video720WithKeyframes: Playlists.MediaRendition {
        var rendition = Self.video720
        for (index, bytes) in [30_000, 40_000, 20_000].enumerated() {
            rendition.segments[index].keyframeBytes = Int64(bytes)
        }
        return rendition
    }

    @Test("I-frame playlist: I-frames only, one byte range per segment from its start, init map, end list")
    func iFramePlaylist() {
        let playlist = Playlists.iFrames(Self.video720WithKeyframes.segments)
        #expect(
            Self.lines(playlist) == [
                "#EXTM3U",
                "#EXT-X-VERSION:7",
                "#EXT-X-TARGETDURATION:7",
                "#EXT-X-MEDIA-SEQUENCE:0",
                "#EXT-X-PLAYLIST-TYPE:VOD",
                "#EXT-X-I-FRAMES-ONLY",
                "#EXT-X-INDEPENDENT-SEGMENTS",
                "#EXT-X-MAP:URI=\"init.mp4\"",
                "#EXTINF:6.000000,",
                "#EXT-X-BYTERANGE:30000@0",
                "segment_0.m4s",
                "#EXTINF:6.250000,",
                "#EXT-X-BYTERANGE:40000@0",
                "segment_1.m4s",
                "#EXTINF:2.000000,",
                "#EXT-X-BYTERANGE:20000@0",
                "segment_2.m4s",
                "#EXT-X-ENDLIST",
                "",
            ]
        )
    }

    @Test("master lists each video rendition's I-frame playlist with video-only bitrates and codecs")
    func masterIFrameStreams() throws {
        let lines = Self.lines(
            Playlists.master(video: [Self.video720WithKeyframes, Self.video360], audio: Self.audio)
        )
        let streams = lines.filter { $0.hasPrefix("#EXT-X-I-FRAME-STREAM-INF:") }
        // 360p has no keyframe ranges (as audio never has): no I-frame playlist to list.
        try #require(streams.count == 1)
        let attributes = Self.attributes(streams[0])
        // Peak over runs of 3.5 to 10.5 s: 40_000 B × 8 / 6.25 s = 51_200; with the 2 s tail: 60_000 B × 8 / 8.25 s
        // = 58_181.8, rounded up. Average: 90_000 B × 8 / 14.25 s = 50_526.3, rounded up.
        #expect(attributes["BANDWIDTH"] == "58182")
        #expect(attributes["AVERAGE-BANDWIDTH"] == "50527")
        #expect(attributes["CODECS"] == "\"avc1.64001F\"")
        #expect(attributes["RESOLUTION"] == "1280x720")
        #expect(attributes["URI"] == "\"720p/iframes.m3u8\"")
        #expect(attributes["FRAME-RATE"] == nil && attributes["AUDIO"] == nil, "RFC 8216 forbids them here")
        // The I-frame entries come after every variant, whose URI lines they must not split.
        let lastVariant = try #require(lines.lastIndex { $0.hasPrefix("#EXT-X-STREAM-INF:") })
        #expect(lines.firstIndex { $0.hasPrefix("#EXT-X-I-FRAME-STREAM-INF:") }! > lastVariant + 1)
    }

    /// One type per playlist kind reads what it writes: every playlist the stitcher writes parses back into a value
    /// that writes the same text again, byte for byte.
    @Test("written playlists parse back and write the same bytes")
    func writtenPlaylistsRoundTrip() throws {
        var keyframed = Self.video720
        keyframed.segments = keyframed.segments.map { segment in
            var segment = segment
            segment.keyframeBytes = segment.bytes / 10
            return segment
        }
        let masters = [
            Playlists.master(video: [keyframed, Self.video360], audio: Self.audio),
            Playlists.master(video: [Self.video360], audio: nil, version: 4),
        ]
        for text in masters {
            let master = try HLSMasterPlaylist(parsing: text)
            #expect(master.text == text)
            #expect(try HLSMasterPlaylist(parsing: master.text) == master)
        }
        let media = [
            Playlists.media(keyframed.segments),
            Playlists.media(keyframed.segments, initURI: nil),
            Playlists.iFrames(keyframed.segments),
            Playlists.iFrames(keyframed.segments, initURI: nil),
        ]
        for text in media {
            let playlist = try HLSMediaPlaylist(parsing: text)
            #expect(playlist.text == text)
            #expect(try HLSMediaPlaylist(parsing: playlist.text) == playlist)
        }
        // The I-frame playlist's byte ranges are what the writer was given.
        let iFrames = try HLSMediaPlaylist(parsing: Playlists.iFrames(keyframed.segments))
        #expect(iFrames.iFramesOnly)
        #expect(iFrames.segments.map(\.byteRange) == keyframed.segments.map { 0..<Int($0.keyframeBytes!) })
    }
}
