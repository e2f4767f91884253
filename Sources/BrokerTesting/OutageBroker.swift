public import Broker
import Synchronization

/// A broker behind a switch: while down, every call fails as a lost Redis connection does
/// (``BrokerError/Code/connectionLost``), or with the error set by ``setFailing(_:)``, so the
/// handling of an unreachable or refusing backend can be exercised without timing games.
public final class OutageBroker: Broker {
    public let base: any Broker
    private let failure = Mutex<BrokerError?>(nil)
    private let failOnce = Mutex<(@Sendable ([BrokerCommand]) -> Bool)?>(nil)
    private let hook = Mutex<(@Sendable ([BrokerCommand]) async -> Void)?>(nil)

    public init(base: any Broker) {
        self.base = base
    }

    public var backendName: String { "outage-test" }

    public func setDown(_ value: Bool) {
        setFailing(value ? BrokerError(.connectionLost, "backend switched off by the test") : nil)
    }

    /// Every call fails with `error` (none when `nil`).
    public func setFailing(_ error: BrokerError?) { failure.withLock { $0 = error } }

    /// The next `execute` whose commands satisfy `matching` fails as a lost connection does
    /// (once): a blip that hits one call and is gone.
    public func failOnce(when matching: @escaping @Sendable ([BrokerCommand]) -> Bool) {
        failOnce.withLock { $0 = matching }
    }

    /// Every `execute` first awaits `hook` with its commands: a test holds a chosen call there
    /// to make a race happen in the order it wants.
    public func beforeExecute(_ hook: @escaping @Sendable ([BrokerCommand]) async -> Void) {
        self.hook.withLock { $0 = hook }
    }

    private func check() throws {
        if let error = failure.withLock({ $0 }) { throw error }
    }

    private func check(_ commands: [BrokerCommand]) throws {
        try check()
        let hit = failOnce.withLock { matching -> Bool in
            guard let test = matching, test(commands) else { return false }
            matching = nil
            return true
        }
        if hit { throw BrokerError(.connectionLost, "a blip made by the test") }
    }

    public func execute(_ command: BrokerCommand) async throws -> Reply {
        try check([command])
        if let hook = hook.withLock({ $0 }) { await hook([command]) }
        return try await base.execute(command)
    }

    public func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply] {
        try check(commands)
        if let hook = hook.withLock({ $0 }) { await hook(commands) }
        return try await base.execute(commands, atomically: atomically)
    }

    public func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue? {
        try check()
        return try await base.blockingPop(from: end, of: queues, timeout: timeout)
    }

    public func blockingMove(
        from source: String, _ sourceEnd: QueueEnd, to destination: String, _ destinationEnd: QueueEnd,
        timeout: Duration?
    ) async throws -> [UInt8]? {
        try check()
        return try await base.blockingMove(from: source, sourceEnd, to: destination, destinationEnd, timeout: timeout)
    }

    public nonisolated(nonsending) func subscribe<Result>(
        to channels: [String], patterns: [String], buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        try check()
        return try await base.subscribe(to: channels, patterns: patterns, buffering: buffering, body)
    }

    public nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String], _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        try check()
        return try await base.attemptTransaction(watching: keys, body)
    }

    public func ping() async throws {
        try check()
        try await base.ping()
    }
}
