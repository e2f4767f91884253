import Broker
import Testing

/// Values and names are bytes: what goes in comes out unchanged.
extension BrokerConformance {
    static let valueCases: [ConformanceCase] = [
        ConformanceCase("values: non-UTF-8 bytes and an empty value round-trip exactly, in keys and lists") { t async throws in
            let binary: [UInt8] = [0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x0d, 0x0a, 0x00]
            let key = t.key("binary"), empty = t.key("empty"), queue = t.key("q")
            try await t.broker.set(key, to: binary)
            #expect(try await t.peer.get(key) == binary)
            try await t.broker.set(empty, to: [UInt8]())
            #expect(try await t.peer.get(empty) == [], "an empty value exists and is not nil")
            #expect(try await t.broker.timeToLive(of: empty) == .persistent)
            try await t.broker.push([binary, []], to: .tail, of: queue)
            #expect(try await t.broker.range(of: queue) == [binary, []])
            #expect(try await t.broker.length(of: queue) == 2)
            #expect(try await t.broker.remove([], count: 0, from: queue) == 1)
            #expect(try await t.broker.pop(from: .head, of: queue) == binary)
            try await t.broker.push([UInt8](), to: .head, of: queue)
            #expect(try await t.broker.pop(from: .head, of: queue) == [], "popping an empty value is not nil")
        },
        ConformanceCase("values: a 1 MiB value round-trips through a key, a list and a blocking pop") { t async throws in
            let large = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 8)) }
            let key = t.key("large"), queue = t.key("q")
            try await t.broker.set(key, to: large)
            #expect(try await t.peer.get(key) == large)
            try await t.broker.push(large, to: .head, of: queue)
            #expect(try await t.peer.blockingPop(from: .tail, of: queue, timeout: .seconds(5)) == large)
        },
        ConformanceCase("values: names are bytes too (spaces, newlines, Unicode)") { t async throws in
            let names = ["with space", "line\r\nbreak", "ünïcødé ✓", "quote\"and'apostrophe", "*glob?[chars]"]
            for (index, name) in names.enumerated() {
                let key = t.key(name)
                try await t.broker.set(key, to: "\(index)")
                #expect(try await t.peer.string(key) == "\(index)", "key \(name.debugDescription)")
                #expect(try await t.broker.delete(key) == 1)
            }
            let channel = t.channel("ünï code\r\n")
            try await t.broker.subscribe(to: channel) { subscription async throws in
                #expect(try await t.peer.publish("x", to: channel) == 1)
                #expect(try await nextMessage(subscription).channel == channel)
            }
        },
    ]
}
