public import Broker
import Logging
import Synchronization

extension RedisBroker {
    public nonisolated(nonsending) func subscribe<Result>(
        to channels: [String],
        patterns: [String],
        buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        let names = channels.map { SubscriptionRegistry.Name(kind: .channel, name: $0) }
            + patterns.map { SubscriptionRegistry.Name(kind: .pattern, name: $0) }
        guard !names.isEmpty else {
            throw BrokerError(.invalidArgument, "subscribe needs at least one channel or pattern")
        }
        let connection = try await subscriber.connection()
        let subscription = Subscription(channels: channels, patterns: patterns, buffering: buffering)
        let toSubscribe = registry.withLock { $0.add(subscription, to: names) }
        send(toSubscribe, subscribing: true, on: connection)
        do {
            try await waitForConfirmation(of: names, on: connection)
        } catch {
            await leave(subscription, names)
            throw error
        }
        do {
            let result = try await body(subscription)
            await leave(subscription, names)
            return result
        } catch {
            await leave(subscription, names)
            throw error
        }
    }

    /// Runs `body` (a wait for a confirmation from Redis); if it has not finished within the
    /// command timeout, the subscriber connection is deemed hung and closed, which ends the
    /// wait (and reconnects, resubscribing everything).
    private func withWatchdog<T: Sendable>(on connection: RedisConnection, _ body: () async -> T) async -> T {
        let timeout = configuration.commandTimeout
        // Unstructured, so that it does not inherit the caller's cancellation: leaving a
        // subscription is what a cancelled subscriber does (graceful shutdown), and a child task
        // would find its sleep cancelled at once, leaving the wait unguarded while Redis hangs.
        let watchdog = Task {
            do {
                try await Task.sleep(for: timeout)
            } catch {
                return  // the confirmation came first
            }
            connection.close(BrokerError(.timedOut, "redis: no subscription confirmation within \(timeout)"))
        }
        let result = await body()
        watchdog.cancel()
        return result
    }

    private func waitForConfirmation(of names: [SubscriptionRegistry.Name], on connection: RedisConnection)
        async throws(BrokerError)
    {
        let result = await withWatchdog(on: connection) { await confirmation(of: names, on: connection) }
        try result.get()
    }

    private func confirmation(of names: [SubscriptionRegistry.Name], on connection: RedisConnection)
        async -> Result<Void, BrokerError>
    {
        await withCheckedContinuation { continuation in
            let outcome: Result<Void, BrokerError>? = registry.withLock { registry in
                // Checked under the registry lock: a connection that closes after this point
                // fails the waiter through `subscriberLost`.
                if let reason = connection.closedReason {
                    return .failure(BrokerError(.connectionLost, reason.message))
                }
                return registry.waitForConfirmation(of: names, continuation) ? nil : .success(())
            }
            if let outcome { continuation.resume(returning: outcome) }
        }
    }

    /// Removes the subscription; when it was the last user of a channel or pattern, waits
    /// until Redis confirmed the unsubscription, so that once `subscribe` returns a publish no
    /// longer counts this process as a receiver.
    private func leave(_ subscription: Subscription, _ names: [SubscriptionRegistry.Name]) async {
        let toUnsubscribe = registry.withLock { $0.remove(subscription, from: names) }
        subscription.finish()
        guard !toUnsubscribe.isEmpty, let connection = subscriber.current else { return }
        await withWatchdog(on: connection) { await unsubscription(of: toUnsubscribe, on: connection) }
    }

    private func unsubscription(of toUnsubscribe: [SubscriptionRegistry.Name], on connection: RedisConnection) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let registered = registry.withLock { registry in
                guard connection.closedReason == nil else { return false }
                registry.waitForUnsubscription(of: toUnsubscribe, continuation)
                return true
            }
            guard registered else { return continuation.resume() }
            send(toUnsubscribe, subscribing: false, on: connection)
        }
    }

    private func send(_ names: [SubscriptionRegistry.Name], subscribing: Bool, on connection: RedisConnection) {
        guard !names.isEmpty else { return }
        var encoder = RESPEncoder()
        let channels = names.filter { $0.kind == .channel }.map { Array($0.name.utf8) }
        let patterns = names.filter { $0.kind == .pattern }.map { Array($0.name.utf8) }
        if !channels.isEmpty { encoder.append([Array((subscribing ? "SUBSCRIBE" : "UNSUBSCRIBE").utf8)] + channels) }
        if !patterns.isEmpty { encoder.append([Array((subscribing ? "PSUBSCRIBE" : "PUNSUBSCRIBE").utf8)] + patterns) }
        // Push mode: confirmations come back through `handlePush`, not as replies.
        connection.enqueue(.init(bytes: encoder.bytes, replies: 0, timeout: nil) { _ in })
    }

    /// Everything the subscriber connection receives (on its I/O thread).
    ///
    /// The keep-alive `PING`'s answer is `+PONG` while no channel is subscribed and, in
    /// subscribed mode (RESP2), a `["pong", ""]` array: neither is news here.
    func handlePush(_ value: RESPValue) {
        guard case .array(let parts) = value, let kind = parts.first?.text else { return }
        switch kind {
        case "pong":
            return
        case "message" where parts.count == 3:
            guard let channel = parts[1].text, case .bulk(let payload) = parts[2] else { return }
            let targets = registry.withLock { $0.subscribers(of: .init(kind: .channel, name: channel)) }
            for subscription in targets {
                subscription.deliver(ChannelMessage(channel: channel, payload: payload))
            }
        case "pmessage" where parts.count == 4:
            guard let pattern = parts[1].text, let channel = parts[2].text, case .bulk(let payload) = parts[3] else {
                return
            }
            let targets = registry.withLock { $0.subscribers(of: .init(kind: .pattern, name: pattern)) }
            for subscription in targets {
                subscription.deliver(ChannelMessage(channel: channel, pattern: pattern, payload: payload))
            }
        case "subscribe", "psubscribe":
            guard parts.count >= 2, let name = parts[1].text else { return }
            let kind: SubscriptionRegistry.Kind = kind == "subscribe" ? .channel : .pattern
            let (ready, resumed) = registry.withLock { $0.confirmed(.init(kind: kind, name: name)) }
            for waiter in ready { waiter.resume(returning: .success(())) }
            for subscription in resumed { subscription.resumedAfterLoss() }
        case "unsubscribe", "punsubscribe":
            guard parts.count >= 2, let name = parts[1].text else { return }
            let kind: SubscriptionRegistry.Kind = kind == "unsubscribe" ? .channel : .pattern
            registry.withLock { $0.unsubscribed(.init(kind: kind, name: name)) }?.resume()
        default:
            break
        }
    }

    /// The subscriber connection closed: callers still waiting for a confirmation fail; live
    /// subscriptions stay and are resubscribed on the next connection.
    func subscriberLost(_ error: BrokerError) {
        let (subscribing, leaving) = registry.withLock { $0.connectionLost() }
        let failure = BrokerError(.connectionLost, error.message)
        for waiter in subscribing { waiter.resume(returning: .failure(failure)) }
        for waiter in leaving { waiter.resume() }
    }

    /// A new subscriber connection after a loss: subscribe every name in use again.
    func resubscribe(on connection: RedisConnection) {
        let (names, channels, patterns) = registry.withLock { registry in
            let names = registry.resubscribeAll()
            return (names, registry.channelCount, registry.patternCount)
        }
        send(names, subscribing: true, on: connection)
        logger.info(
            "redis subscriber reconnected: resubscribed",
            metadata: ["channels": "\(channels)", "patterns": "\(patterns)", "reconnects": "\(reconnectCount)"])
    }
}
