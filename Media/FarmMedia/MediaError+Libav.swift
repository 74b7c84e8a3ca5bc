import CFFmpeg
import FarmFormats

/// libav's text for an error code (`av_err2str` is a macro Swift cannot import).
package func avErrorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    if av_strerror(code, &buffer, buffer.count) < 0 {
        return "libav error \(code)"
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Checks a libav return code, turning a negative one into a `MediaError` naming the call and the file.
@discardableResult
package func check(
    _ result: Int32,
    _ call: @autoclosure () -> String,
    file: @autoclosure () -> String,
    code: MediaError.Code = .encodingFailed
) throws -> Int32 {
    guard result >= 0 else {
        let errorCode: MediaError.Code =
            (result == farm_averror_invaliddata() || result == farm_averror_eof()) ? .invalidInput : code
        throw MediaError(errorCode, "\(file()): \(call()) failed: \(avErrorString(result))")
    }
    return result
}

/// Every block of memory the process allocates from here on starts with the same bytes, whatever the process did
/// before. libx264 reads some bytes it never wrote when a rung's width is not a multiple of 16 (a 426-pixel 240p
/// rung): the same chunk, with the same pictures down to the row padding (`Frame.fillRowPadding`), came out
/// differently now and then from one agent process to the next (FaultTests compares a faulty run's segments with a
/// clean run's, byte for byte). Filling allocations costs a `memset` per block, about 1 % of an encode. Blocks of
/// up to 1032 bytes come from glibc's per-thread cache, which hands them back unfilled.
package enum DeterministicMemory {
    private static let enabled: Bool = farm_fill_allocations(0xA5) == 1

    /// Turns the fill on (once, for the whole process); true when the C library took it.
    @discardableResult
    package static func enable() -> Bool { self.enabled }
}

/// Silences libav's own logging below errors; farm reports failures through `MediaError` instead.
package enum MediaLogging {
    package static func quiet() { farm_av_log_set_level(AV_LOG_FATAL) }
}
