import Crypto
import FarmProtocol
import Foundation
import NIOCore
import NIOPosix
import Synchronization

// SIMULATION. These agents do not encode: they speak the real protocol over real TCP to the real coordinator,
// receive the real source bytes, sleep for a time proportional to the task's cost, and send back the outputs a real
// agent produced for the same task earlier (`ReplayCache`), so the coordinator does all its real work per result
// (staging, SHA-256, the compare-and-swap, renames, the stitch's reads of every segment).

/// The outputs a real farm run produced, per task, replayed byte for byte.
struct ReplayCache: Sendable {
    struct File: Sendable {
        var output: Output
        var bytes: ByteBuffer
    }
    /// `video-<chunkIndex>` (every rung of the chunk, whichever task made it) or `audio`: the same source with the same
    /// settings gives the same tasks, whatever the job.
    var files: [String: [File]]

    static func key(_ spec: TaskSpec) -> String {
        spec.kind == .audio ? "audio" : "video-\(spec.chunkIndex)"
    }
}

/// What the simulated encode of a task costs: pixels × frames of its renditions. An audio track counts as a tenth
/// of a 426×240 rendition of the same length (real AAC encodes run at about a hundred times real time).
func simulatedCost(_ spec: TaskSpec, cache: ReplayCache) -> Double {
    switch spec.kind {
    case .video:
        return Double(spec.renditions.reduce(0) { $0 + $1.width * $1.height }) * Double(spec.frameCount)
    case .audio:
        let seconds = (cache.files["audio"] ?? []).reduce(0.0) { $0 + $1.output.timeBase.seconds($1.output.duration) }
        return 0.1 * 426 * 240 * 30 * seconds
    }
}

/// What all simulated connections of one run share: when to stop, and the counts.
final class RunState: Sendable {
    struct Counts {
        var accepted = 0
        var rejected: [String] = []
        var leaseLatencies: [Double] = []
        var bytesIn: Int64 = 0
        var bytesOut: Int64 = 0
        var firstLease: ContinuousClock.Instant?
        var lastAccepted: ContinuousClock.Instant?
        var simulatedSeconds = 0.0
        var channels: [any Channel] = []
        var abandoned = false
    }
    let counts = Mutex(Counts())
    let expected: Int

    init(expected: Int) { self.expected = expected }

    var isOver: Bool { self.counts.withLock { $0.accepted >= self.expected || $0.abandoned } }

    /// Ends a run that cannot finish: closes every connection, which ends each agent's loop.
    func abandon() {
        let channels = self.counts.withLock {
            $0.abandoned = true
            return $0.channels
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Closes every connection once the last result is in, which ends each agent's loop.
    func accepted() {
        let channels: [any Channel] = self.counts.withLock {
            $0.accepted += 1
            $0.lastAccepted = .now
            return $0.accepted >= self.expected ? $0.channels : []
        }
        for channel in channels { channel.close(promise: nil) }
    }
}

struct SimulatedAgent {
    let name: String
    let host: String
    let port: Int
    let secret: String
    let secondsPerCost: Double
    let cache: ReplayCache
    let state: RunState

    func run() async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(30))
            .connect(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    return try NIOAsyncChannel<Frame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        self.state.counts.withLock { $0.channels.append(channel.channel) }
        if self.state.isOver { channel.channel.close(promise: nil) }
        let allocator = channel.channel.allocator
        do {
            try await channel.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                func next(skippingAcks: Bool = true) async throws -> Frame? {
                    while let frame = try await messages.next() {
                        if skippingAcks, frame.kind == .heartbeatAck || frame.kind == .revoke { continue }
                        if frame.kind == .refused {
                            throw WireError("refused: \((try? frame.decode(Refused.self).reason) ?? "")")
                        }
                        return frame
                    }
                    return nil
                }
                try await outbound.write(encodeFrame(.hello, Hello(agentName: self.name), allocator: allocator))
                guard let challenge = try await next(), challenge.kind == .challenge else {
                    throw WireError("no challenge")
                }
                let nonce = try challenge.decode(Challenge.self).nonce
                let authenticate = Authenticate(
                    proof: proof(secret: self.secret, nonce: nonce, agentName: self.name),
                    capabilities: Capabilities(encoders: ["libx264", "aac"], vaapiDevice: nil, slots: 1)
                )
                try await outbound.write(encodeFrame(.authenticate, authenticate, allocator: allocator))
                guard let welcome = try await next(), welcome.kind == .welcome else { throw WireError("no welcome") }
                let heartbeat = try welcome.decode(Welcome.self).heartbeatIntervalSeconds

                while true {
                    let asked = ContinuousClock.now
                    try await outbound.write(encodeFrame(.leaseRequest, json: Data(), allocator: allocator))
                    guard let frame = try await next() else { return }
                    if frame.kind == .drain { return }
                    guard frame.kind == .lease else { throw WireError("expected a lease, got \(frame.kind)") }
                    let received = ContinuousClock.now
                    let lease = try frame.decode(Lease.self)
                    // The source: received in full and checked, as a real agent must before it can decode.
                    var sourceBytes: Int64 = 0
                    var hasher = SHA256()
                    while let piece = try await next(), piece.kind == .sourceData {
                        sourceBytes += Int64(piece.body.readableBytes)
                        piece.body.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    }
                    _ = hasher.finalize()
                    guard sourceBytes == lease.sourceBytes else { throw WireError("source of \(sourceBytes) bytes") }
                    // A chunk's rungs are split over tasks (`WorkPlanner`): only this task's rungs' files are its.
                    let rungs = Set(lease.spec.renditions.map(\.name))
                    guard
                        let files = self.cache.files[ReplayCache.key(lease.spec)]?.filter({
                            lease.spec.kind == .audio || rungs.contains($0.output.rendition)
                        }),
                        !files.isEmpty
                    else {
                        throw WireError("no cached outputs for \(ReplayCache.key(lease.spec)) \(rungs.sorted())")
                    }
                    let seconds = simulatedCost(lease.spec, cache: self.cache) * self.secondsPerCost
                    self.state.counts.withLock {
                        $0.leaseLatencies.append((received - asked).seconds)
                        $0.firstLease = $0.firstLease ?? received
                        $0.bytesOut += sourceBytes
                        $0.simulatedSeconds += seconds
                    }
                    // "Encoding", with heartbeats at the coordinator's interval as the real agent sends them.
                    var left = seconds
                    while left > 0 {
                        let step = min(left, heartbeat)
                        try await Task.sleep(for: .milliseconds(Int64(step * 1000)))
                        left -= step
                        if left > 0 {
                            let beat = Heartbeat(taskID: lease.taskID, token: lease.token, progress: 1 - left / seconds)
                            try await outbound.write(encodeFrame(.heartbeat, beat, allocator: allocator))
                        }
                    }
                    var uploaded: Int64 = 0
                    for file in files {
                        var offset = 0
                        repeat {
                            let length = min(1 << 20, file.bytes.readableBytes - offset)
                            let header = SegmentData(
                                taskID: lease.taskID,
                                token: lease.token,
                                path: file.output.path,
                                offset: Int64(offset)
                            )
                            let body = file.bytes.getSlice(at: file.bytes.readerIndex + offset, length: length)!
                            try await outbound.write(
                                encodeFrame(.segmentData, header, body: body, allocator: allocator)
                            )
                            offset += length
                        } while offset < file.bytes.readableBytes
                        uploaded += Int64(file.bytes.readableBytes)
                    }
                    let complete = TaskComplete(taskID: lease.taskID, token: lease.token, outputs: files.map(\.output))
                    try await outbound.write(encodeFrame(.taskComplete, complete, allocator: allocator))
                    guard let verdict = try await next() else { return }
                    self.state.counts.withLock { $0.bytesIn += uploaded }
                    switch verdict.kind {
                    case .resultAccepted: self.state.accepted()
                    case .resultRejected:
                        let reason = (try? verdict.decode(Verdict.self).reason ?? "") ?? ""
                        self.state.counts.withLock { $0.rejected.append("task \(lease.taskID): \(reason)") }
                    default: throw WireError("expected a verdict, got \(verdict.kind)")
                    }
                }
            }
        } catch  where self.state.isOver {
            // The run is over (or abandoned) and its connections were closed under the agents: not their failure.
            return
        }
    }
}

extension Duration {
    var seconds: Double { Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18 }
}
