import FarmFormats
import FarmProtocol
import Testing

@testable import FarmCoordinator

@Suite("Progressive playlists")
struct ProgressivePlaylistsTests {
    static let timeBase = Rational(1, 1000)
    static let renditions = [
        RenditionSpec(name: "240p", width: 426, height: 240, maxBitrate: 400_000),
        RenditionSpec(name: "360p", width: 640, height: 360, maxBitrate: 800_000),
    ]
    static let initInfo: [String: ProgressivePlaylists.InitInfo] = [
        "240p": .init(codecs: "avc1.64000d"), "360p": .init(codecs: "avc1.64001e"),
        "audio": .init(codecs: "mp4a.40.2", channels: 2),
    ]

    static func segment(_ rendition: String, _ index: Int) -> OutputFile {
        OutputFile(
            rendition: rendition,
            role: .segment,
            segmentIndex: index,
            path: OutputNames.segmentPath(rendition: rendition, index: index),
            bytes: 10_000,
            sha256: "",
            startPTS: Int64(index) * 2000,
            duration: 2000,
            frames: 50,
            timeBase: Self.timeBase
        )
    }

    static func progress(_ segments: [OutputFile]) -> JobProgress {
        JobProgress(
            outputDirectory: "/out",
            renditions: Self.renditions,
            hasAudio: true,
            targetDuration: 2,
            segmentCount: 6,
            segments: segments,
            initSegments: ["240p": "240p/init.mp4", "360p": "360p/init.mp4", "audio": "audio/init.mp4"]
        )
    }

    static func files(_ segments: [OutputFile]) -> [String: HLSMediaPlaylist] {
        var parsed: [String: HLSMediaPlaylist] = [:]
        for (path, text) in ProgressivePlaylists.files(Self.progress(segments), initInfo: Self.initInfo)
        where path != "master.m3u8" {
            parsed[path] = try? HLSMediaPlaylist(parsing: text)
        }
        return parsed
    }

    /// Each rendition lists its segments from the first up to the first missing one, as an EVENT playlist with no
    /// end; a later segment that landed early waits for the one before it.
    @Test func eachRenditionListsItsSegmentsUpToTheFirstGap() throws {
        let files = Self.files([Self.segment("240p", 0), Self.segment("240p", 1), Self.segment("240p", 3)])
        let low = try #require(files["240p/playlist.m3u8"])
        #expect(low.segments.map(\.uri) == ["segment_00000.m4s", "segment_00001.m4s"])
        #expect(low.playlistType == "EVENT" && !low.hasEndList)
        #expect(low.targetDuration == 2 && low.mapURI == "init.mp4")
        #expect(files["360p/playlist.m3u8"] == nil, "360p has no segment yet")
    }

    /// The master names only playlists a player can start: it waits for three target durations (6 s) of every
    /// video rendition and for the audio.
    @Test func theMasterWaitsUntilEveryRenditionCanBeStarted() throws {
        let video = (0..<3).flatMap { [Self.segment("240p", $0), Self.segment("360p", $0)] }
        let audio = (0..<6).map { Self.segment("audio", $0) }
        func hasMaster(_ segments: [OutputFile]) -> Bool {
            ProgressivePlaylists.files(Self.progress(segments), initInfo: Self.initInfo).map(\.path)
                .contains("master.m3u8")
        }
        #expect(!hasMaster(video), "no audio yet")
        #expect(!hasMaster(Array(video.dropLast()) + audio), "360p lasts 4 s: a player could not start it")
        let all = ProgressivePlaylists.files(Self.progress(video + audio), initInfo: Self.initInfo)
        #expect(all.map(\.path).last == "master.m3u8", "the master is written after the playlists it names")
        let master = try HLSMasterPlaylist(parsing: try #require(all.last?.text))
        #expect(master.variants.map(\.uri) == ["360p/playlist.m3u8", "240p/playlist.m3u8"])
        #expect(master.renditions.count == 1)
    }

    /// A segment longer than the plan's target (the audio's AAC frames) raises the target rather than break RFC 8216.
    @Test func aSegmentLongerThanThePlannedTargetRaisesIt() throws {
        var long = Self.segment("240p", 0)
        long.duration = 2100
        let files = Self.files([long])
        #expect(files["240p/playlist.m3u8"]?.targetDuration == 3)
    }

    /// A job shorter than three target durations gets its master once each rendition is whole.
    @Test func aShortJobGetsItsMasterOnceEveryRenditionIsWhole() throws {
        var progress = Self.progress([Self.segment("240p", 0), Self.segment("360p", 0), Self.segment("audio", 0)])
        progress.segmentCount = 1
        #expect(ProgressivePlaylists.files(progress, initInfo: Self.initInfo).map(\.path).contains("master.m3u8"))
    }
}
