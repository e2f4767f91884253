/// What an agent runs for each job it takes. An app plugs its own work into ``Agent`` by
/// conforming to this protocol.
///
/// ## Implementation requirements
///
/// - Return the job's result: it is published as `result` of the `done` status.
/// - Throw ``JobFailure/permanent(_:details:)`` when retrying cannot help (invalid input): the
///   job ends in `error` at once. Any other error counts as transient: the agent retries with
///   backoff (see ``RetryPolicy``) and publishes `error` with `attempts` when they run out.
/// - Delivery is at least once: after an agent dies or stalls past the visibility timeout,
///   the same job runs again elsewhere. Make side effects idempotent (key them by `jobId`).
/// - Honour task cancellation: an agent that is being cancelled (not gracefully shut down)
///   abandons its jobs, which the reaper then puts back on the queue.
public protocol JobHandler: Sendable {
    /// Processes `job` and returns its result.
    func handle(_ job: JobRecord) async throws -> JSONValue
}

/// A handler's failure that says whether retrying may help.
public struct JobFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Whether a retry can succeed.
    public enum Kind: Sendable, Hashable {
        /// Retrying cannot help: the job ends in `error` at once.
        case permanent
        /// Retrying may help (a dependency was down): the agent retries with backoff.
        case transient
    }

    public var kind: Kind
    /// The status update's `error` text, e.g. `"Invalid amount"`.
    public var message: String
    /// The status update's `details`, if any.
    public var details: String?

    public init(_ kind: Kind, _ message: String, details: String? = nil) {
        self.kind = kind
        self.message = message
        self.details = details
    }

    /// A failure that retrying cannot fix.
    public static func permanent(_ message: String, details: String? = nil) -> JobFailure {
        JobFailure(.permanent, message, details: details)
    }

    /// A failure worth retrying.
    public static func transient(_ message: String, details: String? = nil) -> JobFailure {
        JobFailure(.transient, message, details: details)
    }

    public var description: String {
        "JobFailure.\(kind): \(message)" + (details.map { " (\($0))" } ?? "")
    }
}
