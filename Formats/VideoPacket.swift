/// One video packet of a source, as read without decoding.
public struct VideoPacket: Sendable, Equatable {
    public var pts: Int64
    public var dts: Int64
    public var isKeyframe: Bool
    public var duration: Int64
    /// Decoded but never shown: the demuxer marks the frames before an edit list's start this way (a clip trimmed
    /// with stream copy keeps the frames back to the keyframe before its first shown frame, for decoding).
    public var isDiscarded: Bool
    /// Byte offset of the packet's data in its file; nil when the demuxer does not say. With `pts` and `dts` it
    /// names the packet, so a reader that seeks can tell when it has met it (timestamps alone can repeat).
    public var position: Int64?

    public init(
        pts: Int64,
        dts: Int64,
        isKeyframe: Bool,
        duration: Int64,
        isDiscarded: Bool = false,
        position: Int64? = nil
    ) {
        self.pts = pts
        self.dts = dts
        self.isKeyframe = isKeyframe
        self.duration = duration
        self.isDiscarded = isDiscarded
        self.position = position
    }
}

/// What names one packet of a source among those a demuxer returns: a reader that seeks skips packets until it meets
/// the one with these values. Timestamps are as `SourceProbe` records them (a missing one takes the other's value).
public struct PacketIdentity: Sendable, Equatable, Codable {
    public var pts: Int64
    public var dts: Int64
    /// Byte offset in the file; nil when the demuxer gives none (then the timestamps alone decide).
    public var position: Int64?

    public init(pts: Int64, dts: Int64, position: Int64? = nil) {
        self.pts = pts
        self.dts = dts
        self.position = position
    }
}

extension VideoPacket {
    public var identity: PacketIdentity { PacketIdentity(pts: self.pts, dts: self.dts, position: self.position) }
}
