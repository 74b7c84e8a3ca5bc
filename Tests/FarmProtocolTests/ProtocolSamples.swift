import FarmProtocol
import NIOCore

/// Messages and bodies shared by the protocol tests.
enum ProtocolSamples {
    /// Every byte value, then bytes that would confuse a text or JSON encoding. It is not valid UTF-8, so it can only
    /// survive the trip if the body is carried as raw bytes.
    static let body: [UInt8] = Array(UInt8.min...UInt8.max) + [0x00, 0x00, 0xFF, 0x7B, 0x22, 0x5C, 0x0A]

    /// A body far larger than the encoder's initial buffer, so growing the buffer is exercised.
    static let largeBody: [UInt8] = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    /// Above 2^53: a JSON layer that goes through `Double` would corrupt it.
    static let bigToken: Int64 = 9_007_199_254_740_993

    static let spec = TaskSpec(
        kind: .video,
        jobID: 42,
        chunkIndex: 3,
        chunkCount: 10,
        timeBase: Rational(1, 90_000),
        frameRate: Rational(30_000, 1001),
        originPTS: 0,
        startPTS: 540_000,
        endPTS: 720_000,
        segmentStarts: [540_000, 720_000 - 90_000],
        firstSegmentIndex: 6,
        frameCount: 60,
        renditions: [
            RenditionSpec(name: "360p", width: 640, height: 360, maxBitrate: 800_000),
            RenditionSpec(name: "720p", width: 1280, height: 720, maxBitrate: 3_000_000),
        ],
        settings: .default
    )

    static let outputs: [OutputFile] = [
        OutputFile(
            rendition: "360p",
            role: .initSegment,
            segmentIndex: nil,
            path: "360p/init.mp4",
            bytes: 812,
            sha256: String(repeating: "ab", count: 32),
            startPTS: 0,
            duration: 0,
            frames: 0,
            timeBase: Rational(1, 90_000)
        ),
        OutputFile(
            rendition: "360p",
            role: .segment,
            segmentIndex: 6,
            path: "360p/segment_00006.m4s",
            bytes: 123_456,
            sha256: String(repeating: "0f", count: 32),
            startPTS: 540_000,
            duration: 180_000,
            frames: 50,
            timeBase: Rational(1, 90_000)
        ),
    ]

    /// One message of every kind (and a few variants), in an order a real session could produce.
    static let messages: [FarmMessage] = [
        .hello(FarmMessage.Hello(agentName: "agent-1")),
        .hello(FarmMessage.Hello(protocolVersion: 99, agentName: "äġënt ✓ \"quoted\" \\ back\nslash")),
        .challenge(FarmMessage.Challenge(nonce: "00ff" + String(repeating: "9a", count: 30))),
        .authenticate(
            FarmMessage.Authenticate(
                proof: String(repeating: "c3", count: 32),
                capabilities: FarmMessage.Capabilities(
                    encoders: ["libx264", "h264_vaapi"],
                    vaapiDevice: "/dev/dri/renderD128",
                    slots: 2
                )
            )
        ),
        .authenticate(
            FarmMessage.Authenticate(
                proof: "",
                capabilities: FarmMessage.Capabilities(encoders: [], vaapiDevice: nil, slots: 1)
            )
        ),
        .welcome(FarmMessage.Welcome(agentID: 7, heartbeatIntervalSeconds: 2.5)),
        .refused(FarmMessage.Refused(reason: "protocol version 99 is not 1")),
        .leaseRequest,
        .lease(FarmMessage.Lease(taskID: 11, token: bigToken, leaseSeconds: 30, spec: spec, sourceBytes: 5_000_000)),
        .sourceData(ByteBuffer(bytes: body)),
        .sourceData(ByteBuffer(bytes: largeBody)),
        .sourceData(ByteBuffer()),
        .sourceEnd(FarmMessage.SourceEnd(taskID: 11, sha256: String(repeating: "e1", count: 32))),
        .heartbeat(FarmMessage.Heartbeat(taskID: 11, token: bigToken, progress: 0.25)),
        .heartbeatAck(FarmMessage.HeartbeatAck(taskID: 11, leaseHeld: true)),
        .heartbeatAck(FarmMessage.HeartbeatAck(taskID: 11, leaseHeld: false)),
        .segmentData(
            FarmMessage.SegmentData(taskID: 11, token: bigToken, path: "360p/segment_00006.m4s", offset: 65_536),
            ByteBuffer(bytes: body)
        ),
        .segmentData(
            FarmMessage.SegmentData(taskID: 11, token: bigToken, path: "720p/init.mp4", offset: 0),
            ByteBuffer(bytes: largeBody)
        ),
        .taskComplete(FarmMessage.TaskComplete(taskID: 11, token: bigToken, outputs: outputs)),
        .taskFailed(
            FarmMessage.TaskFailed(taskID: 11, token: bigToken, message: "no video stream", retryable: false)
        ),
        .resultAccepted(FarmMessage.ResultVerdict(taskID: 11, token: bigToken)),
        .resultRejected(FarmMessage.ResultVerdict(taskID: 11, token: bigToken, reason: "segment 6 hash mismatch")),
        .revoke(FarmMessage.Revoke(taskID: 11, reason: "lease expired")),
        .drain,
    ]
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs as a contiguous run of bytes.
    func containsRun(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard needle.count <= self.count else { return false }
        for start in 0...(self.count - needle.count) where self[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}
