import Broker
import Testing

/// Pub/sub: `PUBLISH` counts, `SUBSCRIBE`/`PSUBSCRIBE` delivery, scoped unsubscription.
extension BrokerConformance {
    static let channelCases: [ConformanceCase] = [
        ConformanceCase("channels: the glob table through real pattern subscriptions") { t async throws in
            // Every name gets the case's literal prefix, which leaves each row's outcome unchanged
            // except for an empty channel (Redis: "*" matches "" only after a prefix), so rows
            // with an empty channel are left to the ChannelPattern unit tests.
            let rows = BrokerConformance.globTable.filter { !$0.channel.isEmpty }
            let patterns = Array(Set(rows.map { t.prefix + $0.pattern }))
            let channels = Array(Set(rows.map { t.prefix + $0.channel }))
            let sentinel = t.channel("sentinel:end")
            let received = try await t.broker.subscribe(to: [sentinel], patterns: patterns, buffering: .default) {
                subscription in
                for channel in channels { try await t.peer.publish("probe", to: channel) }
                try await t.peer.publish("end", to: sentinel)
                return try await withDeadline("the sentinel after the probes") {
                    var seen: Set<[String]> = []
                    for try await message in subscription {
                        if message.channel == sentinel && message.pattern == nil { return seen }
                        seen.insert([message.channel, message.pattern ?? ""])
                    }
                    throw ConformanceFailure("the subscription ended before the sentinel arrived")
                }
            }
            for row in rows {
                let delivered = received.contains([t.prefix + row.channel, t.prefix + row.pattern])
                #expect(delivered == row.matches, "\(row)")
            }
        },
        ConformanceCase("channels: PUBLISH counts receivers; channel and pattern both matching deliver twice") { t async throws in
            let channel = t.channel("news"), pattern = t.channel("new*"), only = t.channel("newt")
            #expect(try await t.broker.publish("nobody", to: channel) == 0)
            try await t.broker.subscribe(to: [channel], patterns: [pattern], buffering: .default) { subscription in
                #expect(try await t.peer.publish("hello", to: channel) == 2)
                let first = try await nextMessage(subscription)
                let second = try await nextMessage(subscription)
                #expect(Set([first, second]) == [
                    ChannelMessage(channel: channel, pattern: nil, payload: "hello".bytes),
                    ChannelMessage(channel: channel, pattern: pattern, payload: "hello".bytes),
                ])
                #expect(try await t.peer.publish("pattern only", to: only) == 1)
                #expect(
                    try await nextMessage(subscription)
                        == ChannelMessage(channel: only, pattern: pattern, payload: "pattern only".bytes))
                try await t.peer.subscribe(to: channel) { _ async throws in
                    #expect(try await t.broker.publish("three", to: channel) == 3)
                }
                #expect(try await t.broker.publish("two again", to: channel) == 2)
            }
            #expect(try await t.peer.publish("gone", to: channel) == 0)
        },
        ConformanceCase("channels: two patterns matching one channel each deliver it, counted twice") { t async throws in
            let first = t.channel("a*"), second = t.channel("*b"), channel = t.channel("ab")
            try await t.broker.subscribe(to: [], patterns: [first, second], buffering: .default) { subscription in
                #expect(try await t.peer.publish("m", to: channel) == 2)
                let messages = [try await nextMessage(subscription), try await nextMessage(subscription)]
                #expect(Set(messages.compactMap(\.pattern)) == [first, second])
                #expect(messages.allSatisfy { $0.channel == channel && $0.payload == "m".bytes })
            }
        },
        ConformanceCase("channels: leaving the body unsubscribes, also when it throws; its value is returned") { t async throws in
            let channel = t.channel("c"), pattern = t.channel("c*")
            let answer = try await t.broker.subscribe(to: [channel], patterns: [pattern], buffering: .default) { _ async throws in
                #expect(try await t.peer.publish("x", to: channel) == 2)
                return 42
            }
            #expect(answer == 42)
            #expect(try await t.peer.publish("x", to: channel) == 0)
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await t.broker.subscribe(to: [channel], patterns: [pattern], buffering: .default) { _ in
                    #expect(try await t.peer.publish("x", to: channel) == 2)
                    throw Boom()
                }
            }
            #expect(try await t.peer.publish("x", to: channel) == 0)
            // The same channel can be subscribed again afterwards.
            try await t.broker.subscribe(to: channel) { subscription async throws in
                #expect(try await t.peer.publish("again", to: channel) == 1)
                #expect(try await nextMessage(subscription).payload == "again".bytes)
            }
        },
        ConformanceCase("channels: messages arrive in publish order, bytes unchanged (binary, empty, 256 KiB)") { t async throws in
            let channel = t.channel("c")
            let binary: [UInt8] = [0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0d, 0x0a]
            let large = (0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            try await t.broker.subscribe(to: channel) { subscription in
                for index in 0..<100 { try await t.peer.publish("\(index)", to: channel) }
                for payload in [binary, [], large] { try await t.peer.publish(payload, to: channel) }
                var order: [String] = []
                for _ in 0..<100 { order.append(try await nextMessage(subscription).payload.text) }
                #expect(order == (0..<100).map { "\($0)" })
                #expect(try await nextMessage(subscription).payload == binary)
                #expect(try await nextMessage(subscription).payload == [])
                #expect(try await nextMessage(subscription).payload == large)
            }
        },
        ConformanceCase("channels: handleMessages gets every message in publish order, then returns when cancelled") {
            t async throws in
            let channel = t.channel("c")
            let seen = Mailbox<String>()
            try await t.broker.subscribe(to: channel) { subscription in
                // Two arrive before the handler is installed: they come first.
                try await t.peer.publish("early-0", to: channel)
                try await t.peer.publish("early-1", to: channel)
                try await eventually("the early messages are buffered") { subscription.bufferedCount == 2 }
                let handling = Task {
                    try await subscription.handleMessages { seen.send($0.payload.text) }
                }
                for index in 0..<200 { try await t.peer.publish("\(index)", to: channel) }
                var order: [String] = []
                for _ in 0..<202 { order.append(try await seen.receive("a handled message")) }
                #expect(order == ["early-0", "early-1"] + (0..<200).map { "\($0)" })
                handling.cancel()
                try await withDeadline("handleMessages returns once cancelled") { try await handling.value }
                #expect(seen.drain().isEmpty, "nothing handled twice")
            }
        },
    ]

    /// The next message of `subscription`, within a deadline.
    static func nextMessage(_ subscription: Subscription) async throws -> ChannelMessage {
        try await withDeadline("a message on \(subscription.channels + subscription.patterns)") {
            var iterator = subscription.makeAsyncIterator()
            guard let message = try await iterator.next() else {
                throw ConformanceFailure("the subscription ended while a message was expected")
            }
            return message
        }
    }
}
