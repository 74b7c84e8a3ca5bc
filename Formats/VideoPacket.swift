/// One video packet of a source, as read without decoding.
public struct VideoPacket: Sendable, Equatable {
    public var pts: Int64
    public var dts: Int64
    public var isKeyframe: Bool
    public var duration: Int64
    /// Decoded but never shown: the demuxer marks the frames before an edit list's start this way (a clip trimmed
    /// with stream copy keeps the frames back to the keyframe before its first shown frame, for decoding).
    public var isDiscarded: Bool

    public init(pts: Int64, dts: Int64, isKeyframe: Bool, duration: Int64, isDiscarded: Bool = false) {
        self.pts = pts
        self.dts = dts
        self.isKeyframe = isKeyframe
        self.duration = duration
        self.isDiscarded = isDiscarded
    }
}
