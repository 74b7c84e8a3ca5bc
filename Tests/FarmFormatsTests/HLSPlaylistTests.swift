import FarmFormats
import Testing

@Suite("HLS playlist parser")
struct HLSPlaylistTests {
    static let master = """
        #EXTM3U
        #EXT-X-VERSION:7
        #EXT-X-INDEPENDENT-SEGMENTS
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="default",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/playlist.m3u8"
        #EXT-X-STREAM-INF:BANDWIDTH=1264000,AVERAGE-BANDWIDTH=900000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="audio"
        360p/playlist.m3u8
        #EXT-X-STREAM-INF:BANDWIDTH=564000,CODECS="avc1.640015,mp4a.40.2",RESOLUTION=426x240,FRAME-RATE=25.000,AUDIO="audio"
        240p/playlist.m3u8

        """

    static let media = """
        #EXTM3U
        #EXT-X-VERSION:7
        #EXT-X-TARGETDURATION:3
        #EXT-X-MEDIA-SEQUENCE:0
        #EXT-X-PLAYLIST-TYPE:VOD
        #EXT-X-INDEPENDENT-SEGMENTS
        #EXT-X-MAP:URI="init.mp4"
        #EXTINF:2.000000,
        segment_00000.m4s
        #EXTINF:2.000000,
        segment_00001.m4s
        #EXTINF:0.520000,
        segment_00002.m4s
        #EXT-X-ENDLIST

        """

    @Test func parsesOurMasterPlaylist() throws {
        let master = try HLSMasterPlaylist(parsing: Self.master)
        #expect(master.version == 7)
        #expect(master.independentSegments)
        #expect(master.variants.map(\.uri) == ["360p/playlist.m3u8", "240p/playlist.m3u8"])
        let first = try #require(master.variants.first)
        #expect(first.bandwidth == 1_264_000)
        #expect(first.averageBandwidth == 900_000)
        #expect(first.codecs == "avc1.64001f,mp4a.40.2", "a quoted value keeps its commas")
        #expect(first.resolution?.width == 640 && first.resolution?.height == 360)
        #expect(first.frameRate == 25)
        #expect(first.audioGroup == "audio")
        #expect(master.variants[1].averageBandwidth == nil)
        #expect(master.audioRendition(group: "audio")?.uri == "audio/playlist.m3u8")
        #expect(master.audioRendition(group: "other") == nil)
    }

    @Test func parsesOurMediaPlaylist() throws {
        let media = try HLSMediaPlaylist(parsing: Self.media)
        #expect(media.targetDuration == 3)
        #expect(media.mediaSequence == 0)
        #expect(media.playlistType == "VOD")
        #expect(media.independentSegments)
        #expect(media.hasEndList)
        #expect(media.mapURI == "init.mp4")
        #expect(media.segments.map(\.uri) == ["segment_00000.m4s", "segment_00001.m4s", "segment_00002.m4s"])
        #expect(media.segments.map(\.duration) == [2, 2, 0.52])
    }

    @Test func acceptsCRLFAndTitles() throws {
        let text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:1.5,a title\r\nsegment.m4s\r\n"
        let media = try HLSMediaPlaylist(parsing: text)
        #expect(media.segments == [.init(uri: "segment.m4s", duration: 1.5)])
        #expect(!media.hasEndList)
        #expect(media.playlistType == nil)
    }

    @Test(arguments: [
        ("segment.m4s\n", "#EXTM3U"),
        ("#EXTM3U\n#EXTINF:abc,\nsegment.m4s\n", "no valid duration"),
        ("#EXTM3U\nsegment.m4s\n", "no EXTINF before it"),
        ("#EXTM3U\n#EXTINF:2,\n", "no segment URI"),
        ("#EXTM3U\n#EXT-X-TARGETDURATION:2.5\n", "not an integer"),
        ("#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n", "EXT-X-MAP without a URI"),
    ])
    func rejectsBrokenMediaPlaylists(text: String, message: String) {
        #expect {
            try HLSMediaPlaylist(parsing: text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func rejectsBrokenMasterPlaylists() {
        #expect(throws: PlaylistError.self) {
            try HLSMasterPlaylist(parsing: "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n")
        }
        #expect(throws: PlaylistError.self) { try HLSMasterPlaylist(parsing: "#EXTM3U\n240p/playlist.m3u8\n") }
        #expect(throws: PlaylistError.self) { try HLSMasterPlaylist(parsing: Self.media) }
    }

    @Test func parsesAttributeLists() throws {
        let attributes = try HLSAttributes(parsing: "A=1,B=\"x,y\",C=0x1F,D=\"\"")
        #expect(attributes == ["A": "1", "B": "x,y", "C": "0x1F", "D": ""])
        #expect(throws: PlaylistError.self) { try HLSAttributes(parsing: "A=\"open") }
        #expect(throws: PlaylistError.self) { try HLSAttributes(parsing: "A=\"x\"B=1") }
        #expect(throws: PlaylistError.self) { try HLSAttributes(parsing: "NOVALUE") }
    }

    @Test func byteRangesWithAndWithoutOffsets() throws {
        let playlist = try HLSMediaPlaylist(
            parsing:
                """
                #EXTM3U
                #EXT-X-VERSION:7
                #EXT-X-I-FRAMES-ONLY
                #EXTINF:1.0,
                #EXT-X-BYTERANGE:100@20
                a.m4s
                #EXTINF:1.0,
                #EXT-X-BYTERANGE:50
                a.m4s
                #EXTINF:1.0,
                b.m4s
                """
        )
        #expect(playlist.iFramesOnly)
        // Without an offset, a range starts where the previous range of the same file ended (RFC 8216 4.3.2.2).
        #expect(playlist.segments.map(\.byteRange) == [20..<120, 120..<170, nil])
        #expect(throws: PlaylistError.self) {
            try HLSMediaPlaylist(parsing: "#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:50\nb.m4s\n")
        }
        #expect(throws: PlaylistError.self) {
            try HLSMediaPlaylist(parsing: "#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:x@1\nb.m4s\n")
        }
    }
}
