import Broker
import Testing

/// String keys: `GET`, `SET` with conditions, `DEL`, `INCRBY`, and the one-kind-per-key rule.
extension BrokerConformance {
    static let keyCases: [ConformanceCase] = [
        ConformanceCase("keys: SET then GET; GET of a missing key is nil; SET overwrites") { t async throws in
            let key = t.key("k")
            #expect(try await t.broker.get(key) == nil)
            #expect(try await t.broker.set(key, to: "one"))
            #expect(try await t.peer.string(key) == "one")
            #expect(try await t.broker.set(key, to: "two"))
            #expect(try await t.broker.string(key) == "two")
        },
        ConformanceCase("keys: set-if-absent (NX) and set-if-present (XX)") { t async throws in
            let key = t.key("k"), other = t.key("other")
            #expect(try await t.broker.set(key, to: "1", condition: .ifAbsent))
            #expect(try await t.broker.set(key, to: "2", condition: .ifAbsent) == false)
            #expect(try await t.broker.string(key) == "1")
            #expect(try await t.broker.set(other, to: "1", condition: .ifPresent) == false)
            #expect(try await t.broker.get(other) == nil)
            #expect(try await t.broker.set(key, to: "3", condition: .ifPresent))
            #expect(try await t.broker.string(key) == "3")
            // A list counts as present.
            let queue = t.key("queue")
            try await t.broker.push("x", to: .head, of: queue)
            #expect(try await t.broker.set(queue, to: "v", condition: .ifAbsent) == false)
            #expect(try await t.broker.length(of: queue) == 1)
        },
        ConformanceCase("keys: DEL counts the keys that existed, each once") { t async throws in
            let a = t.key("a"), b = t.key("b"), queue = t.key("queue")
            try await t.broker.set(a, to: "1")
            try await t.broker.push("x", to: .head, of: queue)
            #expect(try await t.broker.delete(a, b, queue, t.key("missing"), a) == 2)
            #expect(try await t.broker.get(a) == nil)
            #expect(try await t.broker.length(of: queue) == 0)
            #expect(try await t.broker.delete(a) == 0)
        },
        ConformanceCase("keys: INCRBY from a missing key, by positive and negative amounts") { t async throws in
            let key = t.key("counter")
            #expect(try await t.broker.increment(key) == 1)
            #expect(try await t.broker.increment(key, by: 5) == 6)
            #expect(try await t.broker.increment(key, by: -10) == -4)
            #expect(try await t.broker.string(key) == "-4")
            try await t.broker.set(key, to: "41")
            #expect(try await t.broker.increment(key) == 42)
            #expect(try await t.broker.timeToLive(of: key) == .persistent)
        },
        ConformanceCase("keys: INCRBY on a non-integer or at overflow throws notAnInteger and changes nothing") { t async throws in
            let key = t.key("k")
            for text in ["abc", " 1", "01", "", "1.5", "9223372036854775808"] {
                try await t.broker.set(key, to: text)
                await expectBrokerError(.notAnInteger, "INCR on \"\(text)\"") {
                    _ = try await t.broker.increment(key)
                }
                #expect(try await t.broker.string(key) == text)
            }
            try await t.broker.set(key, to: "9223372036854775807")
            await expectBrokerError(.notAnInteger, "INCR past Int64.max") { _ = try await t.broker.increment(key) }
            #expect(try await t.broker.string(key) == "9223372036854775807")
            try await t.broker.set(key, to: "-9223372036854775808")
            await expectBrokerError(.notAnInteger, "INCRBY -1 past Int64.min") {
                _ = try await t.broker.increment(key, by: -1)
            }
            #expect(try await t.broker.increment(key, by: 5) == -9_223_372_036_854_775_803)
        },
        ConformanceCase("keys: a list command on a string key throws wrongType and changes nothing") { t async throws in
            let key = t.key("string"), queue = t.key("queue")
            try await t.broker.set(key, to: "v", expiry: .after(.seconds(60)))
            try await t.broker.push("q", to: .head, of: queue)
            await expectBrokerError(.wrongType, "LPUSH") { try await t.broker.push("x", to: .head, of: key) }
            await expectBrokerError(.wrongType, "RPOP") { _ = try await t.broker.pop(from: .tail, of: key) }
            await expectBrokerError(.wrongType, "LLEN") { _ = try await t.broker.length(of: key) }
            await expectBrokerError(.wrongType, "LRANGE") { _ = try await t.broker.range(of: key) }
            await expectBrokerError(.wrongType, "LTRIM") { try await t.broker.trim(key, from: 0, through: 1) }
            await expectBrokerError(.wrongType, "LREM") { try await t.broker.remove("v".bytes, from: key) }
            await expectBrokerError(.wrongType, "LMOVE from a string") {
                _ = try await t.broker.move(from: key, .tail, to: queue, .head)
            }
            await expectBrokerError(.wrongType, "LMOVE onto a string") {
                _ = try await t.broker.move(from: queue, .tail, to: key, .head)
            }
            await expectBrokerError(.wrongType, "BRPOP") {
                _ = try await t.broker.blockingPop(from: .tail, of: key, timeout: .milliseconds(100))
            }
            await expectBrokerError(.wrongType, "BLMOVE onto a string") {
                _ = try await t.broker.blockingMove(from: queue, .tail, to: key, .head, timeout: .milliseconds(100))
            }
            #expect(try await t.broker.string(key) == "v")
            guard case .expiresIn = try await t.broker.timeToLive(of: key) else {
                Issue.record("the string's TTL was lost")
                return
            }
            #expect(try await t.contents(of: queue) == ["q"])
        },
        ConformanceCase("keys: a string command on a list key throws wrongType; plain SET replaces the list") { t async throws in
            let queue = t.key("queue")
            try await t.broker.push(["a", "b"].map(\.bytes), to: .tail, of: queue)
            await expectBrokerError(.wrongType, "GET") { _ = try await t.broker.get(queue) }
            await expectBrokerError(.wrongType, "INCR") { _ = try await t.broker.increment(queue) }
            #expect(try await t.contents(of: queue) == ["a", "b"])
            // As in Redis, SET overwrites whatever kind of value the key held.
            #expect(try await t.broker.set(queue, to: "v", condition: .ifPresent))
            #expect(try await t.broker.string(queue) == "v")
        },
    ]
}
