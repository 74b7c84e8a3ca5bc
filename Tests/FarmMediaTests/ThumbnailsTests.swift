import FarmFormats
import FarmMedia
import FarmTestSupport
import FarmVerify
import Foundation
import Testing

@Suite("Thumbnails, real libav")
struct ThumbnailsTests {
    /// A 320x240 25 fps moving pattern (10 s) with sparse keyframes (every 4 s) and B-frames, so that most tiles lie
    /// between keyframes and come out of the decoder reordered.
    static func makeSource(
        at path: String,
        seconds: Int = 10,
        gop: Int = 100,
        arguments: [String] = [],
        remux: [String]? = nil
    ) throws {
        let encoded = remux == nil ? path : path + ".plain.mp4"
        try run(
            "ffmpeg",
            [
                "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                "testsrc2=size=320x240:rate=25:duration=\(seconds)",
            ] + arguments + ["-c:v", "libx264", "-g", "\(gop)", "-bf", "3", "-pix_fmt", "yuv420p", encoded]
        )
        if let remux {
            try run("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", "-i", encoded] + remux + [path])
        }
    }

    /// The Y plane of a picture file or of every frame of a video, scaled by ffmpeg (which applies rotation).
    static func lumaFrames(_ path: String, width: Int, height: Int, filters: String? = nil) throws -> [Plane] {
        let raw = path + ".\(width)x\(height).gray"
        try run(
            "ffmpeg",
            ["-hide_banner", "-loglevel", "error", "-y", "-i", path, "-vf", filters ?? "scale=\(width):\(height)"]
                + ["-f", "rawvideo", "-pix_fmt", "gray", raw]
        )
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
        let size = width * height
        return stride(from: 0, to: bytes.count - size + 1, by: size).map {
            Plane(width: width, height: height, samples: Array(bytes[$0..<$0 + size]))
        }
    }

    static func crop(_ plane: Plane, x: Int, y: Int, width: Int, height: Int) -> Plane {
        var samples: [UInt8] = []
        for row in y..<y + height { samples += plane.samples[row * plane.width + x..<row * plane.width + x + width] }
        return Plane(width: width, height: height, samples: samples)
    }

    struct Cue {
        var start: Int
        var end: Int
        var file: String
        var rect: [Int]
    }

    /// A strict reader of the thumbnail WebVTT: `WEBVTT`, then blank-line-separated cues of a timing line and a
    /// `file#xywh=x,y,w,h` line.
    static func parseCues(_ text: String) throws -> [Cue] {
        let blocks = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        try #require(blocks.first == "WEBVTT")
        func milliseconds(_ stamp: Substring) throws -> Int {
            let parts = stamp.split(whereSeparator: { $0 == ":" || $0 == "." }).map { Int($0) }
            let values = try #require(parts.count == 4 ? parts.compactMap { $0 } : nil, "bad timestamp \(stamp)")
            return ((values[0] * 60 + values[1]) * 60 + values[2]) * 1000 + values[3]
        }
        return try blocks.dropFirst().map { block in
            let lines = block.split(separator: "\n")
            try #require(lines.count == 2, "bad cue \(block)")
            let times = lines[0].components(separatedBy: " --> ")
            try #require(times.count == 2, "bad timing line \(lines[0])")
            let target = lines[1].components(separatedBy: "#xywh=")
            try #require(target.count == 2, "bad cue payload \(lines[1])")
            return Cue(
                start: try milliseconds(Substring(times[0])),
                end: try milliseconds(Substring(times[1])),
                file: target[0],
                rect: target[1].split(separator: ",").compactMap { Int($0) }
            )
        }
    }

    /// The sheet is a grid of 160-wide tiles at the display aspect, the cues cover the video exactly, and every
    /// tile shows the frame its plan chose inside its cue (a closer match than the frames either side of it): the
    /// first keyframe shown in the cue (keyframes every 1.4 s here, so four of the five tiles show one past their
    /// cue's start), else the frame at its start (keyframes every 4 s). Also from MPEG-TS (no index to seek with,
    /// timestamps not starting at zero) and from open GOPs (pictures before a keyframe that reference the GOP before
    /// it).
    @Test(
        arguments: [
            ("source.mp4", 35, [String](), 4), ("source.ts", 35, [], 4),
            ("source.mkv", 100, ["-x264-params", "open-gop=1"], 0),
        ]
    )
    func sheetTilesAreTheFramesTheirPlanChose(name: String, gop: Int, arguments: [String], pastTheStart: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file(name)
        try Self.makeSource(at: source, gop: gop, arguments: arguments)
        let info = try SourceProbe.probe(path: source)
        var options = ThumbnailPlan.Options()
        options.columns = 2
        let plan = try Thumbnails.write(from: ThumbnailSource(info), to: directory.path, options: options).plan
        #expect(plan.tiles.filter { $0.pictureMS != $0.startMS }.count == pastTheStart)

        let sheetPath = directory.file(Thumbnails.sheetName)
        let size = try Probe.videoSize(sheetPath)
        #expect(plan.tileHeight == 120)
        #expect(size.width == 2 * 160 && size.height == 3 * 120, "the sheet is \(size.width)x\(size.height)")

        let cues = try Self.parseCues(try String(contentsOfFile: directory.file(Thumbnails.cuesName), encoding: .utf8))
        #expect(cues.count == 5)
        #expect(cues.first?.start == 0)
        #expect(zip(cues, cues.dropFirst()).allSatisfy { $0.end == $1.start }, "cues have gaps or overlaps")
        let duration = try Probe.framePresentationTimes(source).count * 40
        #expect(cues.last?.end == duration)
        for cue in cues {
            #expect(cue.file == Thumbnails.sheetName)
            #expect(cue.rect.count == 4 && cue.rect[2] == 160 && cue.rect[3] == 120)
            #expect(cue.rect[0] + cue.rect[2] <= size.width && cue.rect[1] + cue.rect[3] <= size.height)
        }

        let sheet = try #require(try Self.lumaFrames(sheetPath, width: size.width, height: size.height).first)
        let frames = try Self.lumaFrames(source, width: 160, height: 120)
        #expect(frames.count == 250)
        #expect(cues.map(\.start) == plan.tiles.map(\.startMS))
        for (cue, planned) in zip(cues, plan.tiles) {
            #expect(planned.pictureMS >= cue.start && planned.pictureMS < cue.end, "picture outside its cue")
            let tile = Self.crop(sheet, x: cue.rect[0], y: cue.rect[1], width: 160, height: 120)
            let index = planned.pictureMS / 40
            let exact = PictureQuality.psnr(tile, frames[index])
            #expect(exact > 35, "tile at \(planned.pictureMS) ms: \(exact) dB against its frame")
            for neighbour in [index - 1, index + 1] where frames.indices.contains(neighbour) {
                let other = PictureQuality.psnr(tile, frames[neighbour])
                #expect(
                    other < exact,
                    "tile at \(planned.pictureMS) ms looks more like frame \(neighbour) than \(index)"
                )
            }
        }
    }

    /// Decoding costs at most one pass over the file: with a single keyframe the seeker decodes on instead of going
    /// back to the start for every tile (which would decode about 2,300 packets here), and with keyframes every 4 s
    /// and tiles every 8 s it seeks over the frames between tiles instead of decoding them. With a keyframe in every
    /// cue (every 1.4 s, tiles every 2 s) a tile costs a few packets, not the ~17 from the keyframe before its start.
    @Test(
        arguments: [
            (gop: 1000, interval: 2, atMost: 500), (gop: 100, interval: 8, atMost: 150),
            (gop: 35, interval: 2, atMost: 100),
        ]
    )
    func decodesLittleMoreThanTheFramesItShows(gop: Int, interval: Int, atMost: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        try Self.makeSource(at: source, seconds: 20, gop: gop)
        var options = ThumbnailPlan.Options()
        options.minimumInterval = interval
        let written = try Thumbnails.write(
            from: ThumbnailSource(try SourceProbe.probe(path: source)),
            to: directory.path,
            options: options
        )
        #expect(written.plan.tiles.count == (20 + interval - 1) / interval)
        #expect(written.packetsDecoded <= atMost, "decoded \(written.packetsDecoded) of 500 packets")
    }

    @Test func sameSourceGivesTheSameBytes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        try Self.makeSource(at: source)
        let thumbnails = ThumbnailSource(try SourceProbe.probe(path: source))
        try Thumbnails.write(from: thumbnails, to: directory.file("first"))
        try Thumbnails.write(from: thumbnails, to: directory.file("second"))
        for name in [Thumbnails.posterName, Thumbnails.sheetName, Thumbnails.cuesName] {
            let first = try Data(contentsOf: URL(fileURLWithPath: directory.file("first/\(name)")))
            let second = try Data(contentsOf: URL(fileURLWithPath: directory.file("second/\(name)")))
            #expect(!first.isEmpty && first == second, "\(name) differs between two runs")
        }
    }

    struct PosterCase: CustomTestStringConvertible, Sendable {
        var name: String
        var filters: [String] = []
        var remux: [String]? = nil
        var posterWidth: Int
        var posterHeight: Int
        var testDescription: String { self.name }
    }

    /// The poster is upright at the display aspect: it matches ffmpeg's own rendering of the frame a tenth in (ffmpeg
    /// turns pictures by their display matrix, and `scale` to the display size stretches non-square pixels).
    @Test(
        arguments: [
            PosterCase(name: "square", posterWidth: 320, posterHeight: 240),
            PosterCase(
                name: "rotated 90",
                remux: ["-c", "copy", "-metadata:s:v:0", "rotate=90"],
                posterWidth: 240,
                posterHeight: 320
            ),
            PosterCase(name: "non-square pixels", filters: ["-vf", "setsar=4/3"], posterWidth: 426, posterHeight: 240),
        ]
    )
    func posterIsUprightAtTheDisplayAspect(_ poster: PosterCase) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = directory.file("source.mp4")
        try Self.makeSource(at: source, arguments: poster.filters, remux: poster.remux)
        let plan = try Thumbnails.write(from: ThumbnailSource(try SourceProbe.probe(path: source)), to: directory.path)
            .plan
        #expect(plan.posterMS == 1000)
        let posterPath = directory.file(Thumbnails.posterName)
        let size = try Probe.videoSize(posterPath)
        #expect(size.width == poster.posterWidth && size.height == poster.posterHeight, "\(size.width)x\(size.height)")
        let picture = try #require(
            try Self.lumaFrames(posterPath, width: poster.posterWidth, height: poster.posterHeight).first
        )
        let frames = try Self.lumaFrames(source, width: poster.posterWidth, height: poster.posterHeight)
        let psnr = PictureQuality.psnr(picture, frames[25])
        #expect(psnr > 25, "the poster is \(psnr) dB from the source's frame at 1 s")
        // A poster turned the wrong way (or not at all) would match its mirror image better.
        let upsideDown = Plane(width: picture.width, height: picture.height, samples: picture.samples.reversed())
        #expect(PictureQuality.psnr(upsideDown, frames[25]) < psnr)
    }
}
