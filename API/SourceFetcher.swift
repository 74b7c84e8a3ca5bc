import AsyncHTTPClient
import FarmCoordinator
import Foundation
import Logging
import NIOCore
import ServiceLifecycle

/// Limits of a source fetched from a URL.
package struct SourceFetchLimits: Sendable {
    /// The largest source, in bytes (the upload limit).
    package var maximumSize: Int64
    /// The longest a whole fetch may take.
    package var timeout: Duration
    /// Redirects followed, each to a URL checked again.
    package var maximumRedirects: Int
    /// Tries of a fetch that fails on a broken connection, a timeout or a 5xx/429 answer.
    package var attempts: Int
    /// Seconds a fetched source is kept after its job ends (then removed; a retry fetches it again).
    package var lifetime: Double

    package init(
        maximumSize: Int64,
        timeout: Duration = .seconds(3600),
        maximumRedirects: Int = 5,
        attempts: Int = 3,
        lifetime: Double = 24 * 3600
    ) {
        self.maximumSize = maximumSize
        self.timeout = timeout
        self.maximumRedirects = maximumRedirects
        self.attempts = attempts
        self.lifetime = lifetime
    }
}

/// Fetches the sources jobs name by URL (`{"source": {"url": …}}`) into the coordinator's upload folder, one job at
/// a time per coordinator, each fetch claimed in PostgreSQL (`JobStore.claimSourceFetch`) so that exactly one
/// coordinator fetches it and another takes over when that one dies. Every hop of the way is checked against the
/// outbound policy (no fetch from the coordinator's own networks); a source larger than the limit, a 4xx answer or a
/// refused address fails the job with what to do; a broken connection, a timeout or a 5xx answer is tried again.
struct SourceFetcher: Service {
    var store: JobStore
    var http: HTTPClient
    var policy: OutboundURLPolicy
    var signal: WorkSignal
    var limits: SourceFetchLimits
    var logger: Logger

    /// How long a claim lasts between renewals.
    static let leaseSeconds = 60.0

    func run() async {
        // A shutdown cancels a fetch midway: its lease runs out and another coordinator fetches it again.
        try? await cancelWhenGracefulShutdown {
            try await Migrations.waitUntilCurrent(self.store.client, logger: self.logger)
            while !Task.isCancelled {
                let seen = self.signal.generation
                do {
                    while let fetch = try await self.store.claimSourceFetch(leaseSeconds: Self.leaseSeconds) {
                        try await self.fetch(fetch)
                    }
                    for path in try await self.store.forgetFetchedSources(olderThan: self.limits.lifetime) {
                        await UploadFile.remove(at: path)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    self.logger.warning("source fetch round failed; retrying", metadata: ["error": "\(error)"])
                }
                await self.signal.wait(since: seen, timeout: .seconds(10))
            }
        }
    }

    /// A fetch that cannot succeed by trying again.
    struct Refused: Error, CustomStringConvertible {
        var description: String
    }

    /// A fetch that may succeed later.
    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    /// The job was cancelled while its source came in.
    struct NoLongerWanted: Error {}

    private func fetch(_ fetch: SourceFetch) async throws {
        let metadata: Logger.Metadata = ["job": "\(fetch.jobID)", "attempt": "\(fetch.attempt)"]
        self.logger.info("fetching a job's source", metadata: metadata)
        let started = ContinuousClock.now
        do {
            let bytes = try await withThrowingTaskGroup(of: Int64?.self) { group in
                group.addTask { try await self.download(fetch) }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .seconds(Self.leaseSeconds / 3))
                        guard try await self.store.renewSourceFetch(fetch.jobID, leaseSeconds: Self.leaseSeconds)
                        else { throw NoLongerWanted() }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: self.limits.timeout)
                    throw Failed(description: "the fetch took longer than \(self.limits.timeout)")
                }
                defer { group.cancelAll() }
                while let done = try await group.next() {
                    if let done { return done }
                }
                return Int64(0)
            }
            try await self.store.finishSourceFetch(fetch.jobID)
            self.logger.info(
                "fetched a job's source",
                metadata: metadata.merging(
                    ["bytes": "\(bytes)", "seconds": "\((ContinuousClock.now - started).seconds)"],
                    uniquingKeysWith: { $1 }
                )
            )
        } catch is NoLongerWanted {
            await UploadFile.remove(at: Self.partialPath(fetch.path))
            self.logger.info("stopped fetching the source of a job that ended", metadata: metadata)
        } catch is CancellationError {
            await UploadFile.remove(at: Self.partialPath(fetch.path))
            throw CancellationError()
        } catch {
            await UploadFile.remove(at: Self.partialPath(fetch.path))
            let permanent = error is Refused || error is OutboundURLRefused
            let again = !permanent && fetch.attempt < self.limits.attempts
            let message =
                "fetching the source \(Self.redacted(fetch.url)) failed: \(error)"
                + (again
                    ? " (attempt \(fetch.attempt) of \(self.limits.attempts); trying again)"
                    : permanent
                        ? "" : " (after \(fetch.attempt) attempts; check that the URL answers, then retry the job)")
            self.logger.warning("source fetch failed", metadata: metadata.merging(["error": "\(message)"]) { $1 })
            try await self.store.failSourceFetch(
                fetch.jobID,
                error: message,
                retryAfter: again ? 5 * pow(2, Double(fetch.attempt - 1)) : nil
            )
        }
    }

    /// Downloads the source into `fetch.path` (through a `.part` file, renamed once complete and fsynced); its size.
    private func download(_ fetch: SourceFetch) async throws -> Int64? {
        var url = try await self.policy.check(fetch.url, purpose: "source")
        for hop in 0...self.limits.maximumRedirects {
            var request = HTTPClientRequest(url: url.absoluteString)
            request.headers.add(name: "User-Agent", value: "farm")
            let response: HTTPClientResponse
            do {
                response = try await self.http.execute(request, timeout: .seconds(60))
            } catch {
                throw Failed(description: "\(url.host ?? "the server") could not be reached: \(error)")
            }
            let status = response.status
            if [301, 302, 303, 307, 308].contains(status.code) {
                guard hop < self.limits.maximumRedirects else {
                    throw Refused(
                        description: "more than \(self.limits.maximumRedirects) redirects; give the final URL"
                    )
                }
                guard let location = response.headers.first(name: "location"),
                    let next = URL(string: location, relativeTo: url)?.absoluteURL
                else { throw Refused(description: "a redirect (\(status.code)) without a usable Location") }
                url = try await self.policy.check(next.absoluteString, purpose: "source (redirected)")
                continue
            }
            guard status.code == 200 else {
                let answer = "the server answered \(status.code) \(status.reasonPhrase)"
                if status.code >= 500 || status.code == 429 { throw Failed(description: answer) }
                throw Refused(description: answer + "; check the URL (and that it needs no credentials)")
            }
            let length = response.headers.first(name: "content-length").flatMap { Int64($0) }
            if let length, length > self.limits.maximumSize {
                throw Refused(description: Self.tooLarge(length, limit: self.limits.maximumSize))
            }
            let partial = Self.partialPath(fetch.path)
            await UploadFile.remove(at: partial)
            try await UploadFile.create(at: partial)
            let appended = try await UploadFile.append(
                response.body,
                to: partial,
                at: 0,
                room: self.limits.maximumSize
            )
            if appended.overflowed {
                throw Refused(description: Self.tooLarge(nil, limit: self.limits.maximumSize))
            }
            if let interruption = appended.interruption {
                throw Failed(description: "the connection broke after \(appended.written) bytes: \(interruption)")
            }
            if let length, appended.written != length {
                throw Failed(description: "the server sent \(appended.written) of the \(length) bytes it announced")
            }
            guard rename(partial, fetch.path) == 0 else {
                throw UploadFileError(operation: "rename", path: partial, code: errno)
            }
            return appended.written
        }
        throw Refused(description: "more than \(self.limits.maximumRedirects) redirects; give the final URL")
    }

    static func partialPath(_ path: String) -> String { path + ".part" }

    private static func tooLarge(_ length: Int64?, limit: Int64) -> String {
        "the source is larger than the \(limit)-byte limit\(length.map { " (\($0) bytes)" } ?? ""); "
            + "ask the farm's operator to raise --max-upload-size, or send a smaller file"
    }

    /// A URL as logs and job errors show it: without its query, which may hold a presigned URL's signature.
    static func redacted(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "(unparsable URL)" }
        if parts.query != nil { parts.query = "…" }
        return parts.string ?? "(unparsable URL)"
    }
}
