import CFFmpeg
import FarmProtocol

/// Moves every timestamp of a copied stream by `units` of `timeBase` (converted to the stream's own time base).
public struct TimestampShift: Sendable, Equatable {
    public var units: Int64
    public var timeBase: Rational

    public init(units: Int64, timeBase: Rational) {
        self.units = units
        self.timeBase = timeBase
    }

    public static let none = TimestampShift(units: 0, timeBase: Rational(1, 1))

    func units(in streamTimeBase: AVRational) -> Int64 { av_rescale_q(self.units, self.timeBase.av, streamTimeBase) }
}
