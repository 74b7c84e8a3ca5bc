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
