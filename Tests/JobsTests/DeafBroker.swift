import Broker
import Synchronization

/// Another broker seen through subscriptions that can go deaf: while deaf, messages published
/// on the base broker do not reach them, as while a Redis subscriber connection is lost; on
/// ``hearAgain()`` they resume and report it (``Subscription/onResumedAfterLoss(_:)``), as the
/// Redis backend does once it has subscribed again. Everything else goes straight to the base.
final class DeafBroker: Broker {
    let base: any Broker
    private let state = Mutex<(deaf: Bool, live: [Subscription])>((false, []))

    init(base: any Broker) { self.base = base }

    var backendName: String { base.backendName }
    var callsAreRoundTrips: Bool { base.callsAreRoundTrips }

    func goDeaf() { state.withLock { $0.deaf = true } }

    /// Hears again and reports the loss before any later message is delivered, as the Redis
    /// backend does (it reports on the confirmation of its new SUBSCRIBE, ahead of messages).
    func hearAgain() {
        state.withLock { state in
            state.deaf = false
            for subscription in state.live { subscription.resumedAfterLoss() }
        }
    }

    nonisolated(nonsending) func subscribe<Result>(
        to channels: [String], patterns: [String], buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        try await base.subscribe(to: channels, patterns: patterns, buffering: buffering) { inner in
            let outer = Subscription(channels: channels, patterns: patterns, buffering: buffering)
            state.withLock { $0.live.append(outer) }
            defer {
                state.withLock { $0.live.removeAll { $0 === outer } }
                outer.finish()
            }
            return try await withThrowingTaskGroup(of: Void.self) { pump in
                pump.addTask {
                    try await inner.handleMessages { message in
                        self.state.withLock { state in if !state.deaf { outer.deliver(message) } }
                    }
                }
                defer { pump.cancelAll() }
                return try await body(outer)
            }
        }
    }

    func execute(_ command: BrokerCommand) async throws -> Reply { try await base.execute(command) }

    func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply] {
        try await base.execute(commands, atomically: atomically)
    }

    func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue? {
        try await base.blockingPop(from: end, of: queues, timeout: timeout)
    }

    func blockingMove(
        from source: String, _ sourceEnd: QueueEnd, to destination: String, _ destinationEnd: QueueEnd, timeout: Duration?
    ) async throws -> [UInt8]? {
        try await base.blockingMove(from: source, sourceEnd, to: destination, destinationEnd, timeout: timeout)
    }

    nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String], _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        try await base.attemptTransaction(watching: keys, body)
    }

    func ping() async throws { try await base.ping() }
}

extension BrokerCommand {
    /// Whether this is an `LRANGE`, as the router's reads of event logs are.
    var readsAList: Bool {
        if case .range = self { return true }
        return false
    }
}

/// Holds whoever calls ``wait()`` until ``open()``; open, it holds no one.
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if isOpen { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
