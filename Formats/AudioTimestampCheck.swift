/// Finds audio timestamps no timeline can follow, before any task is planned, so a source whose audio clock is
/// damaged fails with its cause named instead of coming out as hours of silence or as audio that drops out.
///
/// `AudioTimeline` places frames by their timestamps: a gap becomes silence, an overlap is dropped. That is right for
/// what real files hold (a lost packet, the seam of clips joined by stream copy: tens of milliseconds), and wrong for
/// a timestamp that is simply broken. One packet stamped an hour late would be placed an hour late, with an hour of
/// silence before it, and every packet after it dropped as "overlap" until the clock caught up; the probe's audio
/// length would grow to match, so the stitch's length check would pass it. Two shapes give such a clock away:
///
/// - it goes back by more than `largestOverlap`: the packets after it would be thrown away (or the jump before it
///   was forward, and made silence where there was sound);
/// - it jumps forward past the video's end, or starts there: audio that continues past the video runs on
///   contiguously, it does not jump there.
///
/// A forward gap inside the video is kept: it is what a capture that lost its audio for a while looks like, and
/// silence is what a player following the timestamps would play. Pure: `SourceProbe` in FarmMedia feeds it each
/// audio packet of the source.
package struct AudioTimestampCheck {
    /// Clips joined by stream copy overlap by one AAC frame plus its priming (~45 ms); a clock going back by more is
    /// broken.
    package static let largestOverlap = 1.0
    /// A forward gap smaller than this is timestamp rounding or a lost packet, wherever it lands.
    package static let smallestJump = 1.0

    /// What is wrong with the clock, in words for the job's error.
    package enum Problem: Equatable, CustomStringConvertible {
        /// The clock went from `from` seconds back to `to`.
        case jumpsBack(from: Double, to: Double)
        /// The clock jumped from `from` seconds to `to`, past the video's end at `videoEnd`.
        case jumpsPastTheVideo(from: Double, to: Double, videoEnd: Double)
        /// The audio's first packet is at `start` seconds, past the video's end at `videoEnd`.
        case startsPastTheVideo(start: Double, videoEnd: Double)

        package var description: String {
            switch self {
            case .jumpsBack(let from, let to):
                "the audio's timestamps jump back from \(Self.seconds(from)) to \(Self.seconds(to))"
            case .jumpsPastTheVideo(let from, let to, let videoEnd):
                "the audio's timestamps jump from \(Self.seconds(from)) to \(Self.seconds(to)), past the video's end at "
                    + Self.seconds(videoEnd)
            case .startsPastTheVideo(let start, let videoEnd):
                "the audio's timestamps start at \(Self.seconds(start)), past the video's end at \(Self.seconds(videoEnd))"
            }
        }

        private static func seconds(_ value: Double) -> String {
            let rounded = (value * 1000).rounded() / 1000
            return "\(rounded) s"
        }
    }

    /// The latest end of a packet so far, in seconds of the source's clock.
    private var end: Double?
    /// Where the first packet starts.
    private var start: Double?
    /// The forward jump that lands latest: if any lands past the video, this one does.
    private var farthestJump: (from: Double, to: Double)?
    /// The first jump back, kept: the first is the cause, the rest follow from it.
    private var jumpBack: Problem?

    package init() {}

    /// Adds one audio packet: where it starts and how long it lasts, in seconds of the source's clock.
    package mutating func add(start: Double, duration: Double) {
        defer { self.end = max(self.end ?? start, start + max(duration, 0)) }
        guard let end = self.end else {
            self.start = start
            return
        }
        if start < end - Self.largestOverlap {
            if self.jumpBack == nil { self.jumpBack = .jumpsBack(from: end, to: start) }
        } else if start > end + Self.smallestJump {
            if start > self.farthestJump?.to ?? -.infinity { self.farthestJump = (end, start) }
        }
    }

    /// The first problem found, once every packet is added and the video's end (in the same clock) is known.
    package func problem(videoEnd: Double) -> Problem? {
        if let jumpBack = self.jumpBack { return jumpBack }
        if let start = self.start, start > videoEnd + Self.smallestJump {
            return .startsPastTheVideo(start: start, videoEnd: videoEnd)
        }
        guard let jump = self.farthestJump, jump.to > videoEnd + Self.smallestJump else { return nil }
        return .jumpsPastTheVideo(from: jump.from, to: jump.to, videoEnd: videoEnd)
    }
}
