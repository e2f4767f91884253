extension Broker {
    /// Publishes `payload` on `channel`; returns how many subscriptions received it (one
    /// matched by a channel and a pattern counts twice).
    @discardableResult
    public func publish(_ payload: [UInt8], to channel: String) async throws -> Int {
        Int(try await execute(.publish(payload: payload, channel: channel)).integer())
    }

    /// Publishes a string's UTF-8 bytes.
    @discardableResult
    public func publish(_ payload: String, to channel: String) async throws -> Int {
        try await publish(Array(payload.utf8), to: channel)
    }

    /// Subscribes to `channels` (exact names) for the duration of `body`.
    nonisolated(nonsending) public func subscribe<Result>(
        to channels: String...,
        buffering: SubscriptionBuffering = .default,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        try await subscribe(to: channels, patterns: [], buffering: buffering, body)
    }

    /// Subscribes to glob `patterns` (see ``ChannelPattern``) for the duration of `body`.
    nonisolated(nonsending) public func subscribe<Result>(
        toPatterns patterns: String...,
        buffering: SubscriptionBuffering = .default,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        try await subscribe(to: [], patterns: patterns, buffering: buffering, body)
    }
}
