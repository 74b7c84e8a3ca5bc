import Crypto
import FarmCoordinator
import FarmProtocol
import Foundation

/// `POST /v1/jobs`: where the video is and how to encode it (docs/openapi.yaml, `JobRequest`). Every setting is
/// optional; unknown fields are refused, so a misspelt setting is an error rather than a default.
package struct JobRequest: Decodable, Sendable {
    /// Exactly one of:
    package struct Source: Decodable, Sendable {
        /// a file on the coordinator's disk, inside a folder its operator allows (`--source-folder`);
        package var path: String?
        /// an `https://` or `http://` URL the coordinator fetches the video from.
        package var url: String?
    }

    /// Where the job's webhooks go (on ready and on failed), signed with `secret` (docs/api.md, "Webhooks").
    package struct Webhook: Decodable, Sendable {
        package var url: String
        package var secret: String
    }

    /// A file on the coordinator's disk; or
    package var source: Source?
    /// the id of the tenant's finished upload (`/v1/uploads`).
    package var upload: String?
    package var rungs: [String]?
    package var preset: String?
    package var crf: Int?
    package var bFrames: Int?
    package var container: SegmentContainer?
    package var segmentDuration: Double?
    package var priority: Int?
    package var maxInFlight: Int?
    package var webhook: Webhook?
    /// The client's own JSON object, given back with the job, at most `metadataLimit` bytes.
    package var metadata: JSONObject?

    static let fields: Set<String> = [
        "source", "upload", "rungs", "preset", "crf", "bFrames", "container", "segmentDuration", "priority",
        "maxInFlight", "webhook", "metadata",
    ]

    /// The largest `metadata`, in bytes of its JSON.
    package static let metadataLimit = 16 * 1024

    /// Decodes a request body, naming what is wrong with it.
    package static func decode(_ data: Data) throws -> JobRequest {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Problem.badRequest("the body is not a JSON object; send {\"source\": {\"path\": \"…\"}}")
        }
        if let unknown = Set(object.keys).subtracting(Self.fields).sorted().first {
            throw Problem.badRequest(
                "unknown field \(unknown); the fields are \(Self.fields.sorted().joined(separator: ", "))"
            )
        }
        if let source = object["source"] as? [String: Any] {
            if let unknown = Set(source.keys).subtracting(["path", "url"]).first {
                throw Problem.badRequest(
                    "unknown source field \(unknown); give the source as {\"path\": \"…\"} or {\"url\": \"https://…\"}"
                )
            }
            guard source.count == 1 else {
                throw Problem.badRequest(
                    "give the source as exactly one of {\"path\": \"…\"} and {\"url\": \"https://…\"}"
                )
            }
        }
        if let webhook = object["webhook"] as? [String: Any],
            let unknown = Set(webhook.keys).subtracting(["url", "secret"]).first
        {
            throw Problem.badRequest(
                "unknown webhook field \(unknown); give {\"url\": \"https://…\", \"secret\": \"…\"}"
            )
        }
        if let metadata = object["metadata"] {
            guard metadata is [String: Any] else { throw Problem.badRequest("metadata must be a JSON object") }
            let size = (try? JSONSerialization.data(withJSONObject: metadata).count) ?? Int.max
            guard size <= Self.metadataLimit else {
                throw Problem(
                    .contentTooLarge,
                    "Metadata too large",
                    detail:
                        "metadata is \(size) bytes of JSON, more than \(Self.metadataLimit); keep large data on your "
                        + "side and put its id in metadata"
                )
            }
        }
        do {
            return try JSONDecoder().decode(JobRequest.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw Problem.badRequest("\(Self.path(context.codingPath + [key])) is missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw Problem.badRequest("\(Self.path(context.codingPath)) has the wrong type: \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw Problem.badRequest("\(Self.path(context.codingPath)) is null; leave it out for the default")
        } catch let DecodingError.dataCorrupted(context) {
            throw Problem.badRequest("\(Self.path(context.codingPath)): \(context.debugDescription)")
        }
    }

    /// The job an upload's `farm-settings` metadata asks for (JSON: every field but `source` and `upload`), made from
    /// the upload `upload`.
    package static func fromUploadSettings(_ settings: Data, upload: String) throws -> JobRequest {
        guard var object = try? JSONSerialization.jsonObject(with: settings) as? [String: Any] else {
            throw Problem.badRequest(
                "the farm-settings metadata is not a JSON object in base64; send the job's settings, as POST /v1/jobs "
                    + "takes them, without source"
            )
        }
        guard object["source"] == nil, object["upload"] == nil else {
            throw Problem.badRequest("farm-settings names the video itself; leave source and upload out of it")
        }
        object["upload"] = upload
        return try Self.decode(try JSONSerialization.data(withJSONObject: object))
    }

    /// What a request asks, whatever its key order and spacing: the SHA-256 of its JSON with sorted keys. A body
    /// that is not JSON (refused before this) hashes as it is.
    package static func hash(of body: Data) -> Data {
        let canonical =
            (try? JSONSerialization.jsonObject(with: body)).flatMap {
                try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys])
            } ?? body
        return Data(SHA256.hash(data: canonical))
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the body" : keys.map(\.stringValue).joined(separator: ".")
    }

    /// The job's settings, checked as the command line checks its flags.
    package func settings() throws -> JobSettings {
        var encoder = EncoderSettings.default
        if let preset { encoder.preset = preset }
        if let crf { encoder.crf = crf }
        let container = self.container ?? .fmp4
        if container == .ts, let bFrames, bFrames > 0 {
            throw Problem.badRequest("MPEG-TS segments have no B-frames; use container fmp4 or leave bFrames out")
        }
        if let bFrames { encoder.bFrames = bFrames }
        let settings = JobSettings(
            segmentDuration: self.segmentDuration ?? 6,
            rungs: self.rungs,
            encoder: encoder,
            maxInFlight: self.maxInFlight ?? 0,
            container: container
        )
        do {
            try settings.validate()
        } catch {
            throw Problem(.unprocessableContent, "Invalid settings", detail: "\(error)")
        }
        guard (-1000...1000).contains(self.priority ?? 0) else {
            throw Problem(
                .unprocessableContent,
                "Invalid settings",
                detail: "priority is out of range: use -1000 to 1000"
            )
        }
        return settings
    }
}

/// A job as the API shows it (`Job` in docs/openapi.yaml).
package struct JobResource: Codable, Sendable, Equatable {
    package struct Progress: Codable, Sendable, Equatable {
        package var tasksTotal: Int
        package var tasksDone: Int
        package var percent: Double
    }

    package var id: Int64
    package var state: String
    package var error: String?
    package var priority: Int
    package var createdAt: String
    package var finishedAt: String?
    package var durationSeconds: Double?
    package var progress: Progress
    package var retryOf: Int64?
    /// The URL the source is fetched from, for a job submitted with one.
    package var sourceURL: String?
    package var webhookURL: String?
    package var metadata: JSONObject?

    package init(_ job: TenantJob) {
        let formatter = ISO8601DateFormatter()
        self.id = job.id
        self.state = job.state.rawValue
        self.error = job.error
        self.priority = job.priority
        self.createdAt = formatter.string(from: job.createdAt)
        self.finishedAt = job.finishedAt.map { formatter.string(from: $0) }
        self.durationSeconds = job.durationSeconds
        let percent =
            job.state == .ready
            ? 100 : job.tasksTotal == 0 ? 0 : (Double(job.tasksDone) * 1000 / Double(job.tasksTotal)).rounded() / 10
        self.progress = Progress(tasksTotal: job.tasksTotal, tasksDone: job.tasksDone, percent: percent)
        self.retryOf = job.retryOf
        self.sourceURL = job.sourceURL
        self.webhookURL = job.webhookURL
        self.metadata = job.metadata.flatMap { try? JSONDecoder().decode(JSONObject.self, from: Data($0.utf8)) }
    }
}

/// A page of `GET /v1/jobs`: `nextCursor` fetches the next one (absent on the last page).
package struct JobPage: Codable, Sendable {
    package var jobs: [JobResource]
    package var nextCursor: String?
}
