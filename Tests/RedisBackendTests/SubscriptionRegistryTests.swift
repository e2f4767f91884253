import Broker
@testable import RedisBackend
import Testing

/// The reference counting of Redis subscriptions, as a state machine without I/O.
@Suite("Subscription registry")
struct SubscriptionRegistryTests {
    typealias Name = SubscriptionRegistry.Name
    let news = Name(kind: .channel, name: "news")
    let all = Name(kind: .pattern, name: "*")

    func subscription() -> Subscription {
        Subscription(channels: ["news"], patterns: ["*"], buffering: .default)
    }

    @Test func firstSubscriberSubscribesLastUnsubscribes() {
        var registry = SubscriptionRegistry()
        let a = subscription()
        let b = subscription()
        #expect(registry.add(a, to: [news, all]).count == 2)
        #expect(registry.add(b, to: [news, all]).isEmpty, "the second user shares the Redis subscription")
        #expect(registry.confirmed(news).ready.isEmpty && registry.confirmed(all).ready.isEmpty)
        #expect(registry.subscribers(of: news).count == 2)
        #expect(registry.remove(a, from: [news, all]).isEmpty)
        #expect(Set(registry.remove(b, from: [news, all])) == [news, all])
        #expect(registry.subscribers(of: news).isEmpty)
    }

    @Test func aQuickResubscribeWaitsForItsOwnConfirmation() {
        var registry = SubscriptionRegistry()
        let a = subscription()
        #expect(registry.add(a, to: [news]) == [news])
        // `a` gives up before Redis confirmed; `b` comes right after.
        #expect(registry.remove(a, from: [news]) == [news])
        let b = subscription()
        #expect(registry.add(b, to: [news]) == [news], "a new SUBSCRIBE follows the UNSUBSCRIBE")
        _ = registry.confirmed(news)  // the first SUBSCRIBE's confirmation
        #expect(registry.subscribers(of: news).count == 1)
        // b is only confirmed by the second confirmation: one is still pending.
        let names = registry.resubscribeAll()
        #expect(names == [news])
    }

    @Test func reconnectResubscribesEverythingInUse() {
        var registry = SubscriptionRegistry()
        let a = subscription()
        _ = registry.add(a, to: [news, all])
        _ = registry.confirmed(news)
        _ = registry.confirmed(all)
        let lost = registry.connectionLost()
        #expect(lost.subscribing.isEmpty && lost.leaving.isEmpty)
        #expect(Set(registry.resubscribeAll()) == [news, all])
        #expect(registry.channelCount == 1 && registry.patternCount == 1)
        // Confirmed again: its subscribers are told they may have missed messages, once.
        let resumed = registry.confirmed(news).resumed
        #expect(resumed.count == 1 && resumed.first === a)
        #expect(registry.confirmed(all).resumed.count == 1)
        _ = registry.add(a, to: [news])
        #expect(registry.confirmed(news).resumed.isEmpty)
    }

    @Test func aFirstSubscriptionIsNotAResumption() {
        var registry = SubscriptionRegistry()
        _ = registry.add(subscription(), to: [news])
        #expect(registry.confirmed(news).resumed.isEmpty)
    }
}
