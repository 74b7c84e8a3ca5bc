import FarmCoordinator
import FarmTestSupport
import Foundation
import Testing

/// A job submitted through the HTTP API of a real `farm coordinator` process, encoded by a real agent, played by
/// ffmpeg over HTTP through the signed URL `/playback` gives, to the last frame; the URL altered or expired is a 403.
@Suite("Origin playback through a farm", .serialized, .requiresPostgreSQL, .farmTimeLimit)
struct OriginPlaybackThroughAFarmTests {
    @Test func ffmpegPlaysTheSignedMasterPlaylistToTheLastFrame() async throws {
        try await ProcessFarm.with("farm-origin") { farm, directory in
            let sources = directory.file("sources")
            try FileManager.default.createDirectory(atPath: sources, withIntermediateDirectories: true)
            let source = sources + "/clip.mp4"
            try run(
                "ffmpeg",
                [
                    "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=25:duration=4", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000:duration=4", "-c:v", "libx264", "-g", "50",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", source,
                ]
            )
            let port = try await farm.startCoordinator(
                extra: ["--source-folder", sources, "--output-root", directory.file("outputs")]
            )
            let api = "http://127.0.0.1:\(try #require(farm.httpPorts.last))"
            let key = try run(
                FarmBinary.path,
                ["keys", "create", "--tenant", "acme", "--database-url", farm.database.connectionString]
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            let auth = ["-H", "Authorization: Bearer \(key)"]
            let created = try Self.json(
                try run(
                    "curl",
                    ["-sS", "-H", "Content-Type: application/json"] + auth + [
                        "-d", #"{"source": {"path": "\#(source)"}, "rungs": ["240p"], "segmentDuration": 2}"#,
                        "\(api)/v1/jobs",
                    ]
                )
            )
            let job = try #require((created["id"] as? Int).map(Int64.init), "\(created)")

            try farm.startAgent("agent-1", port: port, extra: ["--slots", "2"])
            let status = try await farm.waitForJob(job, timeout: .seconds(300))
            try #require(status.state == .ready, "the job ended \(status.state): \(status.error ?? "")")

            #expect(try Self.status("\(api)/v1/jobs/\(job)/playback") == 401)
            let playback = try Self.json(try run("curl", ["-sS"] + auth + ["\(api)/v1/jobs/\(job)/playback"]))
            let path = try #require(playback["url"] as? String, "\(playback)")
            let master = api + path
            let played = try Self.videoFrames(master)
            let original = try Self.videoFrames(source)
            #expect(original == 100 && played == original, "played \(played) of the source's \(original) frames")

            // The same URL with one digit of its signature changed, or unsigned: refused, and ffmpeg plays nothing.
            let token = path.split(separator: "/")[4]
            var altered = Array(token)
            altered[altered.count - 1] = altered.last == "0" ? "1" : "0"
            let forged = master.replacingOccurrences(of: token, with: String(altered))
            #expect(try Self.status(forged) == 403)
            #expect(try Self.status(forged.replacingOccurrences(of: "master.m3u8", with: "240p/playlist.m3u8")) == 403)
            #expect(try Self.status("\(api)/v1/jobs/\(job)/hls/master.m3u8") == 403)
            #expect(throws: CommandFailed.self) { try Self.videoFrames(forged) }
            // Expired: the shortest lifetime `/playback` signs is 60 s; the test waits for it to pass.
            let short = try Self.json(try run("curl", ["-sS"] + auth + ["\(api)/v1/jobs/\(job)/playback?expires=60"]))
            let expiring = api + (try #require(short["url"] as? String))
            #expect(try Self.status(expiring) == 200)
            try await Task.sleep(for: .seconds(62))
            #expect(try Self.status(expiring) == 403)
        }
    }

    /// The frames of the first video stream, decoded to the end, as ffprobe counts them.
    static func videoFrames(_ url: String) throws -> Int {
        let printed = try run(
            "ffprobe",
            [
                "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
                "-of", "default=nokey=1:noprint_wrappers=1", url,
            ]
        )
        return Int(printed.split(separator: "\n").first?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    static func status(_ url: String) throws -> Int {
        Int(try run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", url])) ?? -1
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }
}
