public import Broker
import Synchronization

extension MemoryBroker {
    nonisolated(nonsending) public func subscribe<Result>(
        to channels: [String],
        patterns: [String],
        buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        guard !channels.isEmpty || !patterns.isEmpty else {
            throw BrokerError(.invalidArgument, "a subscription needs at least one channel or pattern")
        }
        let subscription = Subscription(channels: channels, patterns: patterns, buffering: buffering)
        // Registered before `body` runs, so nothing published once it starts is missed.
        state.withLock { $0.addSubscriber(subscription) }
        defer {
            state.withLock { $0.removeSubscriber(subscription) }
            subscription.finish()
        }
        return try await body(subscription)
    }
}
