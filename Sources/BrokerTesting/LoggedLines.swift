public import Logging
import Synchronization

/// A log handler that keeps every line logged through it (all levels), so that a test can
/// check what a component said: `Logger(label: "test") { _ in lines }`.
public final class LoggedLines: LogHandler, Sendable {
    private let logged = Mutex<[(message: String, metadata: Logger.Metadata)]>([])

    public init() {}

    /// The messages, oldest first.
    public var messages: [String] { logged.withLock { $0.map(\.message) } }

    /// The value of metadata `key` on each line whose message is `message` (`""` where absent).
    public func values(of key: String, where message: String) -> [String] {
        logged.withLock { $0.filter { $0.message == message }.map { $0.metadata[key]?.description ?? "" } }
    }

    public var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    public var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    public func log(event: LogEvent) {
        logged.withLock { $0.append((event.message.description, event.metadata ?? [:])) }
    }
}
