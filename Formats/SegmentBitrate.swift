/// The bit rates HLS declares for a rendition, measured from its segments: the one rule the playlist writer
/// (`Playlists.master`) and `farm verify` (which checks what the writer wrote) share.
package enum SegmentBitrate {
    /// RFC 8216 §4.3.4.2's peak segment bit rate: the highest bit rate of any run of consecutive segments lasting
    /// 0.5 to 1.5 times the target duration. A short last segment is measured with its neighbours, so its keyframe
    /// alone does not inflate BANDWIDTH. `targetDuration` is the playlist's EXT-X-TARGETDURATION: the longest segment,
    /// rounded up.
    ///
    /// Rounded up: BANDWIDTH must not be below the true peak, not even by a fraction of a bit.
    package static func peak(_ segments: [(duration: Double, bytes: Int)], targetDuration: Double) -> Int {
        var peak = 0.0
        for start in segments.indices {
            var duration = 0.0
            var bytes = 0
            for segment in segments[start...] {
                duration += segment.duration
                bytes += segment.bytes
                if duration > 1.5 * targetDuration { break }
                if duration >= 0.5 * targetDuration, duration > 0 { peak = max(peak, Double(bytes * 8) / duration) }
            }
        }
        // Every run is shorter than half the target (a tiny video): its average is the best measure there is.
        return peak > 0 ? Int(peak.rounded(.up)) : self.average(segments)
    }

    /// Total bits over total duration, rounded up like the peak.
    package static func average(_ segments: [(duration: Double, bytes: Int)]) -> Int {
        let duration = segments.reduce(0) { $0 + $1.duration }
        let bytes = segments.reduce(0) { $0 + $1.bytes }
        return duration > 0 ? Int((Double(bytes * 8) / duration).rounded(.up)) : 0
    }
}
