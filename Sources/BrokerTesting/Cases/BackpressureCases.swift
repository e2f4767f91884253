import Broker
import Testing

/// A subscriber that does not keep up: each buffering policy bounds what is kept.
extension BrokerConformance {
    static let backpressureCases: [ConformanceCase] = [
        ConformanceCase("back-pressure: dropNewest(10) keeps the first 10 of 50 and counts 40 dropped") { t async throws in
            let channel = t.channel("c")
            try await t.broker.subscribe(to: [channel], patterns: [], buffering: .dropNewest(capacity: 10)) {
                subscription in
                try await publishUnread(50, to: channel, through: t.peer, into: subscription)
                #expect(subscription.droppedCount == 40)
                try await expectNext(subscription, (1...10).map { "\($0)" })
                // Room again: a new message is kept, and nothing older comes back.
                try await t.peer.publish("after", to: channel)
                try await expectNext(subscription, ["after"])
                #expect(subscription.droppedCount == 40)
            }
        },
        ConformanceCase("back-pressure: dropOldest(10) keeps the last 10 of 50 and counts 40 dropped") { t async throws in
            let channel = t.channel("c")
            try await t.broker.subscribe(to: [channel], patterns: [], buffering: .dropOldest(capacity: 10)) {
                subscription in
                try await publishUnread(50, to: channel, through: t.peer, into: subscription)
                #expect(subscription.droppedCount == 40)
                try await expectNext(subscription, (41...50).map { "\($0)" })
                try await t.peer.publish("after", to: channel)
                try await expectNext(subscription, ["after"])
            }
        },
        ConformanceCase("back-pressure: disconnect(10) yields the first 10, then throws subscriberOverflow") { t async throws in
            let channel = t.channel("c")
            try await t.broker.subscribe(to: [channel], patterns: [], buffering: .disconnect(capacity: 10)) {
                subscription in
                for index in 1...50 { try await t.peer.publish("\(index)", to: channel) }
                try await eventually("the subscription to overflow") { subscription.droppedCount > 0 }
                try await expectNext(subscription, (1...10).map { "\($0)" })
                do {
                    let extra = try await withDeadline("the overflow error") {
                        var iterator = subscription.makeAsyncIterator()
                        return try await iterator.next()
                    }
                    Issue.record("expected subscriberOverflow, got \(String(describing: extra))")
                } catch let error as BrokerError {
                    #expect(error.code == .subscriberOverflow)
                }
            }
            #expect(try await t.peer.publish("after", to: channel) == 0)
        },
    ]

    /// Publishes `1`…`count` without consuming, then waits until the subscription has received
    /// (kept or dropped) every one: with a networked backend they arrive after `publish` returns.
    static func publishUnread(
        _ count: Int, to channel: String, through publisher: any Broker, into subscription: Subscription
    ) async throws {
        for index in 1...count {
            #expect(try await publisher.publish("\(index)", to: channel) == 1)
        }
        try await eventually("all \(count) messages to reach the subscription") {
            subscription.bufferedCount + subscription.droppedCount == count
        }
    }

    /// Expects the next messages' payloads to be `expected`, in order.
    static func expectNext(
        _ subscription: Subscription, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var payloads: [String] = []
        for _ in expected { payloads.append(try await nextMessage(subscription).payload.text) }
        #expect(payloads == expected, sourceLocation: sourceLocation)
    }
}
