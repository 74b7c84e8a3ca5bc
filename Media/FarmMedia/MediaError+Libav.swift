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

/// Silences libav's own logging below errors; farm reports failures through `MediaError` instead.
package enum MediaLogging {
    package static func quiet() { farm_av_log_set_level(AV_LOG_FATAL) }
}
