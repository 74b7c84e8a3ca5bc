/// An error that says whether running the same work again might succeed: what a `taskFailed`'s `retryable` reports
/// (`MediaError` is one).
package protocol RetryClassifiedError: Error {
    var isRetryable: Bool { get }
}

extension FarmMessage.TaskFailed {
    /// Whether a task that failed with `error` is worth another attempt, on either side of the connection. An error
    /// that does not say counts as retryable: `false` fails the whole job at once, so it is kept for errors that know
    /// the input itself is bad.
    package static func isRetryable(_ error: any Error) -> Bool {
        (error as? any RetryClassifiedError)?.isRetryable ?? true
    }
}
