/// Where a segment's leading keyframe ends: the byte range an I-frame playlist lists for the segment, from the
/// segment's start (an fMP4 fragment's `moof` and `mdat` header, or MPEG-TS's PAT and PMT) to the end of the
/// keyframe's data. The stitcher writes these ranges and `farm verify` checks them, with this one reading.
package struct LeadingKeyframe: Equatable {
    /// Bytes from the segment's start to the end of the leading picture.
    package var end: Int
    /// The container marks that picture as a keyframe (an fMP4 sync sample, an MPEG-TS random access point).
    package var isKeyframe: Bool

    /// Reads the leading picture of `bytes`, a segment file from its first byte: MPEG-TS when `transportStream`,
    /// else one fMP4 fragment.
    package init(segment bytes: [UInt8], transportStream: Bool) throws {
        if transportStream {
            let pes = try MPEGTSPackets.leadingPES(bytes)
            self.end = pes.end
            self.isKeyframe = pes.isRandomAccess
        } else {
            let sample = try MP4Boxes.leadingSample(ofFragment: bytes)
            self.end = sample.data.upperBound
            self.isKeyframe = sample.isSync
        }
    }
}
