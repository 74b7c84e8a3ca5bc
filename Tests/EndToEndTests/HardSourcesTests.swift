import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// Sources as phones, cameras and screen recorders write them, generated with ffmpeg at test time. Each one goes
/// through `farm transcode` (an all-in-one farm: coordinator and two agents over real TCP, a real PostgreSQL) and
/// then `farm verify`, as a user would run them: every rung must have exactly the source's frames at the source's
/// times, upright, at the source's display aspect, close to the source in PSNR, with the audio of the default track,
/// and a poster and thumbnails beside them.
@Suite("Hard sources", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct HardSourcesTests {
    struct Source: CustomTestStringConvertible, Sendable {
        var name: String
        /// ffmpeg arguments after the inputs (a 6 s 320x240 25 fps pattern, and a 6 s tone unless `audio` is false).
        var arguments: [String]
        var audio = true
        /// The audio input's ffmpeg arguments, when not the 6 s tone.
        var audioInput: [String]? = nil
        /// The video input's ffmpeg arguments, when not the 6 s 320x240 25 fps pattern.
        var videoInput: [String]? = nil
        /// Remuxes the first result with these arguments (for metadata ffmpeg writes only when copying).
        var remux: [String]? = nil
        /// Arguments before the first result's `-i` in the remux (`-ss` there trims with an edit list).
        var remuxInput: [String] = []
        /// Also given the first result as a second input in the remux (to take its audio trimmed on its own).
        var remuxSecondInput: [String]? = nil
        /// The upright display size the output must have (width / height).
        var displayAspect = 320.0 / 240.0
        /// How long the audio rendition must last: the default audio track's duration.
        var audioSeconds = 6.0
        var testDescription: String { self.name }
    }

    static let h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"]
    static let aac = ["-c:a", "aac"]

    static let x265 = ["-c:v", "libx265", "-tag:v", "hvc1"]
    static let pcm = ["-c:a", "pcm_s16le"]

    static let sources: [Source] = [
        Source(
            name: "variable-frame-rate.mp4",
            arguments: ["-vf", "setpts='if(lt(N,50),N*0.04,2+(N-50)*0.08)/TB'", "-fps_mode", "vfr"] + h264 + aac
        ),
        Source(
            name: "open-gop-b-pyramid.mp4",
            arguments: [
                "-c:v", "libx264", "-x264-params", "open-gop=1:keyint=50:bframes=3:b-pyramid=normal",
            ] + aac
        ),
        Source(name: "one-keyframe.mp4", arguments: ["-c:v", "libx264", "-g", "600"] + aac),
        Source(
            name: "non-square-pixels.mp4",
            arguments: ["-vf", "setsar=4/3"] + h264 + aac,
            displayAspect: 320.0 * 4 / 3 / 240
        ),
        Source(name: "ten-bit.mp4", arguments: h264 + ["-pix_fmt", "yuv420p10le"] + aac),
        Source(name: "four-two-two.mp4", arguments: h264 + ["-pix_fmt", "yuv422p"] + aac),
        Source(name: "far-from-zero.mp4", arguments: h264 + aac + ["-output_ts_offset", "1000"]),
        // Audio from 1 s to 5 s of a 6 s video: it comes out padded with silence from 0 s, ending at 5 s.
        Source(
            name: "late-audio-ending-early.mp4",
            arguments: h264 + aac,
            audioInput: ["-itsoffset", "1", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4"],
            audioSeconds: 5
        ),
        Source(name: "surround.mp4", arguments: h264 + aac + ["-ac", "6"]),
        Source(name: "mono-44100.mp4", arguments: h264 + aac + ["-ac", "1", "-ar", "44100"]),
        Source(
            name: "second-track-default.mp4",
            arguments: ["-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000:duration=3"]
                + ["-map", "0", "-map", "1", "-map", "2"] + h264 + aac
                + ["-disposition:a:0", "0", "-disposition:a:1", "default"],
            audioSeconds: 3
        ),
        Source(name: "no-audio.mp4", arguments: h264, audio: false),
        Source(name: "quicktime.mov", arguments: h264 + aac),
        Source(name: "matroska.mkv", arguments: ["-c:v", "libx264", "-g", "25"] + aac),
        Source(
            name: "vp9.webm",
            arguments: ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-g", "25", "-c:a", "libopus"]
        ),
        Source(name: "mpeg2.ts", arguments: ["-c:v", "mpeg2video", "-g", "12", "-c:a", "mp2"]),
        Source(name: "h264.ts", arguments: h264 + aac + ["-f", "mpegts"]),
        // The 33-bit MPEG-TS clock wraps 2.7 s in (2^33 / 90 kHz = 95443.7 s), as in a long broadcast capture:
        // unwrapped, the stream starts at -1.3 s.
        Source(name: "wrapped-clock.ts", arguments: h264 + aac + ["-output_ts_offset", "95441", "-f", "mpegts"]),
        Source(
            name: "hevc.mp4",
            arguments: ["-c:v", "libx265", "-x265-params", "log-level=error:keyint=25", "-tag:v", "hvc1"] + aac
        ),
        Source(name: "mjpeg.avi", arguments: ["-c:v", "mjpeg", "-q:v", "5", "-c:a", "pcm_s16le"]),
        // Broadcast and editing-room sources. Open GOPs with a B-pyramid and 2 s GOPs cut into 2 s segments: every
        // chunk after the first starts at a recovery-point keyframe whose neighbours reference the GOP before.
        Source(
            name: "open-gop-broadcast.mp4",
            arguments: [
                "-c:v", "libx264", "-x264-params", "open-gop=1:keyint=50:min-keyint=50:bframes=3:b-pyramid=normal",
            ]
                + aac
        ),
        Source(
            name: "open-gop-broadcast.ts",
            arguments: [
                "-c:v", "libx264", "-x264-params", "open-gop=1:keyint=50:min-keyint=50:bframes=3:b-pyramid=normal",
            ]
                + aac + ["-f", "mpegts"]
        ),
        Source(
            name: "hevc-open-gop.mp4",
            arguments: x265 + ["-x265-params", "log-level=error:keyint=50:open-gop=1:bframes=4"] + aac
        ),
        Source(
            name: "hevc-open-gop.ts",
            arguments: x265 + ["-x265-params", "log-level=error:keyint=50:open-gop=1:bframes=4"] + aac
                + ["-f", "mpegts"]
        ),
        // A 7.3 s clip trimmed to start at 1.3 s by stream copy: an edit list hides the 1.3 s back to the keyframe.
        Source(
            name: "edit-list.mp4",
            arguments: h264 + aac,
            audioInput: ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7.3"],
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=7.3"],
            remux: ["-c", "copy"],
            remuxInput: ["-ss", "1.3"]
        ),
        Source(
            name: "edit-list.ts",
            arguments: h264 + aac,
            audioInput: ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7.3"],
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=7.3"],
            remux: ["-c", "copy", "-f", "mpegts"],
            remuxInput: ["-ss", "1.3"],
            // ffmpeg's copy into MPEG-TS drops the frames the edit list hid and starts the audio 0.76 s before the
            // video: 5.32 s of video, and the audio cut to it.
            audioSeconds: 5.33
        ),
        // The video untouched, its audio cut at 1.5 s by stream copy: the copy starts at the AAC frame before 1.5 s,
        // and an edit list on the audio track alone (media time 320 samples, not the 1024 of plain priming) hides
        // the part of that frame before 1.5 s.
        Source(
            name: "audio-edit-list.mp4",
            arguments: h264 + aac,
            audioInput: ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7.5"],
            remux: ["-map", "0:v", "-map", "1:a", "-c", "copy"],
            remuxSecondInput: ["-ss", "1.5"]
        ),
        // Six plays of a 2 s clip joined by stream copy (`-stream_loop`), as long test files and ad breaks are made:
        // each seam keeps the clip's AAC priming and padded last frame, and (the clip's B-frames start its video
        // before zero) ffmpeg squeezes the overlapping packet to one tick, so the audio decodes 0.11 s more than its
        // timestamps hold. The audio follows the timestamps, staying in step with the video.
        Source(
            name: "looped-by-stream-copy.mp4",
            arguments: ["-c:v", "libx264", "-preset", "veryfast", "-g", "25"] + aac,
            audioInput: ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"],
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2"],
            remux: ["-c", "copy"],
            remuxInput: ["-stream_loop", "5"],
            audioSeconds: 12.03
        ),
        Source(
            name: "ntsc-29.97.mp4",
            arguments: h264 + aac,
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30000/1001:duration=6"]
        ),
        Source(
            name: "film-23.976.mp4",
            arguments: h264 + aac,
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24000/1001:duration=6"]
        ),
        Source(name: "prores-422.mov", arguments: ["-c:v", "prores_ks", "-profile:v", "2"] + pcm),
        Source(
            name: "prores-4444-alpha.mov",
            arguments: ["-vf", "format=yuva444p10le", "-c:v", "prores_ks", "-profile:v", "4"] + pcm
        ),
        Source(name: "dnxhr.mxf", arguments: ["-c:v", "dnxhd", "-profile:v", "dnxhr_sq", "-pix_fmt", "yuv422p"] + pcm),
        Source(
            name: "mpeg2-422.mxf",
            arguments: ["-c:v", "mpeg2video", "-pix_fmt", "yuv422p", "-b:v", "8M", "-g", "12", "-bf", "2"] + pcm
        ),
        Source(name: "ten-bit-422.mp4", arguments: h264 + ["-pix_fmt", "yuv422p10le"] + aac),
        Source(name: "av1.mp4", arguments: ["-c:v", "libsvtav1", "-preset", "12", "-g", "25"] + aac),
        Source(
            name: "vp8.webm",
            arguments: ["-c:v", "libvpx", "-deadline", "realtime", "-g", "25", "-c:a", "libvorbis"]
        ),
        // NTSC DV: 720x480 interlaced 4:1:1 with 8:9 pixels, shown 640x480.
        Source(
            name: "dv.avi",
            arguments: ["-c:v", "dvvideo", "-pix_fmt", "yuv411p"] + pcm,
            videoInput: ["-f", "lavfi", "-i", "testsrc2=size=720x480:rate=30000/1001:duration=6"]
        ),
        // HDR10: HEVC Main10, PQ, BT.2020, with mastering metadata; tone mapped to SDR rungs.
        Source(
            name: "hdr10.mp4",
            arguments: ["-vf", "format=yuv420p10le"] + x265
                + [
                    "-x265-params",
                    "log-level=error:keyint=25:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
                        + ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
                        + ":max-cll=1000,400",
                    "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
                ] + aac
        ),
        Source(
            name: "rotated.mp4",
            arguments: h264 + aac,
            remux: ["-c", "copy", "-metadata:s:v:0", "rotate=90"],
            displayAspect: 240.0 / 320.0
        ),
    ]

    static func make(_ source: Source, in directory: TemporaryDirectory) throws -> String {
        let path = directory.file(source.name)
        var arguments = ["-hide_banner", "-loglevel", "error", "-y"]
        arguments += source.videoInput ?? ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6"]
        if source.audio {
            arguments += source.audioInput ?? ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6"]
        }
        guard let remux = source.remux else {
            try run("ffmpeg", arguments + source.arguments + [path])
            return path
        }
        let first = directory.file("plain-" + source.name)
        try run("ffmpeg", arguments + source.arguments + [first])
        let second = source.remuxSecondInput.map { $0 + ["-i", first] } ?? []
        try run(
            "ffmpeg",
            ["-hide_banner", "-loglevel", "error", "-y"] + source.remuxInput + ["-i", first] + second + remux + [path]
        )
        return path
    }

    @Test(arguments: Self.sources)
    func transcodesAndVerifies(_ source: Source) async throws {
        let directory = try TemporaryDirectory("farm-hard")
        defer { directory.remove() }
        let path = try Self.make(source, in: directory)
        let output = directory.file("out")
        try await FarmBinary.transcode(
            path,
            into: output,
            options: ["--agents", "2", "--segment-duration", "2", "--minimum-chunks", "3"]
        )

        // `farm verify` checks frame counts and times, seams, IDR alignment, audio sync and the playlists; the
        // PSNR floor catches a picture that is turned, stretched or shifted by a frame.
        let report = try run(FarmBinary.path, ["verify", path, output, "--min-psnr", "30"])
        #expect(report.contains("PASSED: every check holds"), "\(report)")

        let renditions = try FileManager.default.contentsOfDirectory(atPath: output).filter {
            FileManager.default.fileExists(atPath: "\(output)/\($0)/playlist.m3u8") && $0 != "audio"
        }
        #expect(!renditions.isEmpty)
        for rendition in renditions {
            let format = try run(
                "ffprobe",
                [
                    "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,pix_fmt",
                    "-of", "csv=p=0", "\(output)/\(rendition)/playlist.m3u8",
                ]
            )
            // ffprobe lists the stream once per HLS program.
            #expect(Set(format.split(separator: "\n")) == ["h264,yuv420p"], "\(rendition): \(format)")
            let size = try Probe.videoSize("\(output)/\(rendition)/playlist.m3u8")
            #expect(
                abs(Double(size.width) / Double(size.height) - source.displayAspect) < 0.02,
                "\(rendition) is \(size.width)x\(size.height)"
            )
        }
        // Poster and thumbnails: upright at the display aspect too, and the sheet a picture ffmpeg reads.
        let poster = try Probe.videoSize("\(output)/poster.jpg")
        #expect(
            abs(Double(poster.width) / Double(poster.height) - source.displayAspect) < 0.02,
            "poster.jpg is \(poster.width)x\(poster.height)"
        )
        let cues = try String(contentsOfFile: "\(output)/thumbnails.vtt", encoding: .utf8)
        let tiles = cues.components(separatedBy: " --> ").count - 1
        let sheet = try Probe.videoSize("\(output)/thumbnails.jpg")
        #expect(sheet.width == min(tiles, 10) * 160, "thumbnails.jpg is \(sheet.width)x\(sheet.height)")
        #expect(
            cues.hasPrefix("WEBVTT\n") && cues.contains("00:00:04.000 --> 00:00:0")
                && cues.contains("thumbnails.jpg#xywh=320,0,160,")
        )
        let hasAudio = FileManager.default.fileExists(atPath: "\(output)/audio/playlist.m3u8")
        #expect(hasAudio == source.audio)
        if source.audio {
            let produced = try Probe.streamDuration("\(output)/audio/playlist.m3u8")
            #expect(
                abs(produced - source.audioSeconds) < 0.1,
                "audio lasts \(produced) s, not \(source.audioSeconds) s"
            )
            // Whatever the source's audio, players get what the master promises: AAC-LC, 48 kHz, CHANNELS="2".
            let format = try run(
                "ffprobe",
                [
                    "-v", "error", "-select_streams", "a:0", "-show_entries",
                    "stream=codec_name,profile,sample_rate,channels", "-of", "csv=p=0",
                    "\(output)/audio/playlist.m3u8",
                ]
            )
            #expect(Set(format.split(separator: "\n")) == ["aac,LC,48000,2"], "audio: \(format)")
            let master = try String(contentsOfFile: "\(output)/master.m3u8", encoding: .utf8)
            #expect(master.contains("CHANNELS=\"2\""))
        }
    }
}
