import Broker
import BrokerTesting
import Synchronization
import Testing

/// The bounded buffer every backend feeds: overflow policies, finishing, cancellation.
struct SubscriptionTests {
    private func subscription(_ buffering: SubscriptionBuffering) -> Subscription {
        Subscription(channels: ["c"], patterns: [], buffering: buffering)
    }

    private func message(_ text: String) -> ChannelMessage {
        ChannelMessage(channel: "c", payload: Array(text.utf8))
    }

    private func drain(_ subscription: Subscription) async throws -> [String] {
        var texts: [String] = []
        for try await message in subscription { texts.append(String(decoding: message.payload, as: UTF8.self)) }
        return texts
    }

    @Test func dropNewestKeepsTheFirstMessages() async throws {
        let subscription = subscription(.dropNewest(capacity: 10))
        let accepted = (1...50).map { subscription.deliver(message("\($0)")) }
        #expect(accepted == Array(repeating: true, count: 10) + Array(repeating: false, count: 40))
        #expect(subscription.droppedCount == 40)
        #expect(subscription.bufferedCount == 10)
        subscription.finish()
        #expect(try await drain(subscription) == (1...10).map { "\($0)" })
    }

    @Test func dropOldestKeepsTheLastMessages() async throws {
        let subscription = subscription(.dropOldest(capacity: 10))
        for index in 1...50 { #expect(subscription.deliver(message("\(index)"))) }
        #expect(subscription.droppedCount == 40)
        #expect(subscription.bufferedCount == 10)
        subscription.finish()
        #expect(try await drain(subscription) == (41...50).map { "\($0)" })
    }

    @Test func disconnectYieldsTheBufferThenThrowsOverflow() async throws {
        let subscription = subscription(.disconnect(capacity: 3))
        for index in 1...3 { #expect(subscription.deliver(message("\(index)"))) }
        #expect(!subscription.deliver(message("4")))
        #expect(!subscription.deliver(message("5")), "a disconnected subscription takes nothing more")
        #expect(subscription.droppedCount >= 1)
        var iterator = subscription.makeAsyncIterator()
        for expected in ["1", "2", "3"] {
            #expect(try await iterator.next()?.payload == Array(expected.utf8))
        }
        await #expect(throws: BrokerError.self) { _ = try await iterator.next() }
        var again = subscription.makeAsyncIterator()
        #expect(try await again.next() == nil, "the overflow error is reported once, then iteration ends")
    }

    @Test func handlerCallsNeverOverlapAndKeepDeliveryOrderPerThread() async throws {
        let subscription = subscription(.dropNewest(capacity: 100_000))
        let calls = HandlerLog()
        let handling = Task {
            try await subscription.handleMessages { message in calls.record(String(decoding: message.payload, as: UTF8.self)) }
        }
        try await eventually("the handler is installed") {
            subscription.deliver(self.message("probe"))
            return calls.count > 0
        }
        // Four threads deliver at once: the handler still runs for one message at a time.
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask { for index in 0..<2_000 { subscription.deliver(self.message("\(thread):\(index)")) } }
            }
        }
        try await eventually("every message handled") { calls.texts.filter { !$0.hasPrefix("probe") }.count == 8_000 }
        #expect(calls.overlapped == false)
        for thread in 0..<4 {
            let mine = calls.texts.filter { $0.hasPrefix("\(thread):") }
            #expect(mine == (0..<2_000).map { "\(thread):\($0)" }, "one deliverer's messages stay in its order")
        }
        subscription.finish()
        try await handling.value
    }

    @Test func handleMessagesThrowsWhenTheBackendEndsWithAnError() async throws {
        let subscription = subscription(.dropNewest(capacity: 10))
        let calls = HandlerLog()
        let handling = Task { try await subscription.handleMessages { calls.record(String(decoding: $0.payload, as: UTF8.self)) } }
        try await eventually("the handler is installed") {
            subscription.deliver(self.message("x"))
            return calls.count > 0
        }
        subscription.finish(throwing: BrokerError(.shutDown, "gone"))
        await #expect(throws: BrokerError.self) { try await handling.value }
        #expect(!subscription.deliver(message("late")), "a finished subscription takes nothing more")
    }

    @Test func capacityIsAtLeastOne() {
        #expect(SubscriptionBuffering.dropOldest(capacity: 0).capacity == 1)
        #expect(SubscriptionBuffering.dropNewest(capacity: -5).capacity == 1)
        #expect(SubscriptionBuffering.disconnect(capacity: 7).capacity == 7)
        #expect(SubscriptionBuffering.default == .dropOldest(capacity: 10_000))
    }

    @Test func finishDeliversWhatIsBufferedThenEnds() async throws {
        let subscription = subscription(.default)
        subscription.deliver(message("a"))
        subscription.deliver(message("b"))
        subscription.finish()
        #expect(!subscription.deliver(message("late")), "nothing is accepted after finish")
        #expect(try await drain(subscription) == ["a", "b"])
        #expect(try await drain(subscription) == [], "a finished subscription stays finished")
    }

    @Test func finishWithAnErrorThrowsAfterTheBuffer() async throws {
        let subscription = subscription(.default)
        subscription.deliver(message("a"))
        subscription.finish(throwing: BrokerError(.connectionLost, "gone"))
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next()?.payload == Array("a".utf8))
        await #expect(throws: BrokerError(.connectionLost, "gone")) { _ = try await iterator.next() }
    }

    @Test func aConsumerReceivesMessagesDeliveredWhileItWaits() async throws {
        let subscription = subscription(.dropNewest(capacity: 1))
        let received = try await withDeadline("the consumer to receive two messages") {
            try await withThrowingTaskGroup(of: [ChannelMessage].self) { group in
                group.addTask {
                    var iterator = subscription.makeAsyncIterator()
                    var messages: [ChannelMessage] = []
                    while messages.count < 2, let message = try await iterator.next() { messages.append(message) }
                    return messages
                }
                await Task.yield()
                subscription.deliver(message("first"))
                // Capacity 1: the second is only accepted once the consumer has taken the first.
                while !subscription.deliver(message("second")) { await Task.yield() }
                return try await group.next() ?? []
            }
        }
        #expect(received.map(\.payload) == [Array("first".utf8), Array("second".utf8)])
    }

    @Test func finishWakesAWaitingConsumer() async throws {
        let subscription = subscription(.default)
        try await withDeadline("the waiting consumer to see the end") {
            try await withThrowingTaskGroup(of: ChannelMessage?.self) { group in
                group.addTask {
                    var iterator = subscription.makeAsyncIterator()
                    return try await iterator.next()
                }
                await Task.yield()
                subscription.finish()
                let ended = try await group.next() ?? nil
                #expect(ended == nil)
            }
        }
    }

    @Test func cancellingAWaitingConsumerEndsItsIteration() async throws {
        let subscription = subscription(.default)
        let consumer = Task {
            var iterator = subscription.makeAsyncIterator()
            return try await iterator.next()
        }
        consumer.cancel()
        let result = try await withDeadline("the cancelled consumer to return") { try await consumer.value }
        #expect(result == nil)
        // The subscription itself is still usable by a new consumer.
        subscription.deliver(message("after"))
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next()?.payload == Array("after".utf8))
    }
}

/// What a `handleMessages` handler saw, and whether two calls ever ran at once.
private final class HandlerLog: Sendable {
    private struct State {
        var texts: [String] = []
        var inside = false
        var overlapped = false
    }
    private let state = Mutex(State())

    func record(_ text: String) {
        state.withLock { state in
            if state.inside { state.overlapped = true }
            state.inside = true
        }
        // Long enough for a concurrent deliverer to arrive while this call runs.
        for _ in 0..<50 { _ = state.withLock { $0.texts.count } }
        state.withLock { state in
            state.texts.append(text)
            state.inside = false
        }
    }

    var texts: [String] { state.withLock { $0.texts } }
    var count: Int { state.withLock { $0.texts.count } }
    var overlapped: Bool { state.withLock { $0.overlapped } }
}
