import CFFmpeg
import FarmProtocol

/// A media operation that failed. The description names the file, the libav call or check that failed, libav's own
/// message, and what to do about it.
public struct MediaError: Error, CustomStringConvertible, Sendable {
    package enum Code: Sendable, Equatable {
        /// The input's bytes are not a video farm can read: retrying cannot help.
        case invalidInput
        /// The input is readable but has nothing to transcode (no video stream, zero frames).
        case unsupportedInput
        /// An encoder or muxer failed on data that decoded fine: a bug or a resource problem.
        case encodingFailed
        /// The file system refused (missing file, permissions, disk full).
        case io
    }

    package let code: Code
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// True when running the same work again might succeed.
    package var isRetryable: Bool {
        switch self.code {
        case .invalidInput, .unsupportedInput: false
        case .encodingFailed, .io: true
        }
    }

    public var description: String { self.message }
}

/// Agent and coordinator report a media failure's `isRetryable` as the `taskFailed` message's `retryable`.
extension MediaError: RetryClassifiedError {}

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
