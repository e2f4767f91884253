import Broker
import Testing

/// Time to live: `SET … PX`, `KEEPTTL`, `PEXPIRE`, `PTTL`, and expired keys vanishing.
extension BrokerConformance {
    static let expiryCases: [ConformanceCase] = [
        ConformanceCase("expiry: a key set with PX 100 ms expires and is gone for every operation") { t async throws in
            let key = t.key("k")
            try await t.broker.set(key, to: "v", expiry: .after(.milliseconds(100)))
            try await eventually("the key to expire") { try await t.broker.get(key) == nil }
            #expect(try await t.broker.timeToLive(of: key) == .missing)
            #expect(try await t.peer.get(key) == nil)
            // The expired string does not linger as a type: the name takes a list, or a counter.
            #expect(try await t.broker.push("x", to: .head, of: key) == 1)
            try await t.broker.delete(key)
            try await t.broker.set(key, to: "41", expiry: .after(.milliseconds(50)))
            try await eventually("the counter to expire") { try await t.broker.timeToLive(of: key) == .missing }
            #expect(try await t.broker.increment(key) == 1)
        },
        ConformanceCase("expiry: a list given a TTL expires as a whole") { t async throws in
            let queue = t.key("q")
            try await t.broker.push(["a", "b"].map(\.bytes), to: .tail, of: queue)
            #expect(try await t.broker.expire(queue, after: .milliseconds(100)))
            try await eventually("the list to expire") { try await t.broker.length(of: queue) == 0 }
            #expect(try await t.broker.pop(from: .tail, of: queue) == nil)
            #expect(try await t.broker.timeToLive(of: queue) == .missing)
        },
        ConformanceCase("expiry: TTL states are missing, persistent, and at most the TTL set") { t async throws in
            let key = t.key("k")
            #expect(try await t.broker.timeToLive(of: key) == .missing)
            try await t.broker.set(key, to: "v")
            #expect(try await t.broker.timeToLive(of: key) == .persistent)
            try await t.broker.set(key, to: "v", expiry: .after(.seconds(10)))
            try expectExpiresWithin(try await t.broker.timeToLive(of: key), .seconds(10))
            let queue = t.key("queue")
            try await t.broker.push("x", to: .head, of: queue)
            #expect(try await t.broker.timeToLive(of: queue) == .persistent)
        },
        ConformanceCase("expiry: KEEPTTL keeps the TTL, plain SET clears it") { t async throws in
            let key = t.key("k")
            try await t.broker.set(key, to: "1", expiry: .after(.seconds(30)))
            try await t.broker.set(key, to: "2", expiry: .keepExisting)
            #expect(try await t.broker.string(key) == "2")
            try expectExpiresWithin(try await t.broker.timeToLive(of: key), .seconds(30))
            try await t.broker.set(key, to: "3", expiry: .keepExisting, condition: .ifPresent)
            try expectExpiresWithin(try await t.broker.timeToLive(of: key), .seconds(30))
            try await t.broker.set(key, to: "4")
            #expect(try await t.broker.timeToLive(of: key) == .persistent)
            // KEEPTTL on a new key: there is nothing to keep, so it is persistent.
            let fresh = t.key("fresh")
            try await t.broker.set(fresh, to: "v", expiry: .keepExisting)
            #expect(try await t.broker.timeToLive(of: fresh) == .persistent)
        },
        ConformanceCase("expiry: EXPIRE on a missing key is false; on an existing key sets the TTL") { t async throws in
            let key = t.key("k")
            #expect(try await t.broker.expire(key, after: .seconds(10)) == false)
            #expect(try await t.broker.timeToLive(of: key) == .missing)
            try await t.broker.set(key, to: "v")
            #expect(try await t.broker.expire(key, after: .seconds(10)))
            try expectExpiresWithin(try await t.broker.timeToLive(of: key), .seconds(10))
            #expect(try await t.broker.expire(key, after: .seconds(20)))
            let ttl = try await t.broker.timeToLive(of: key)
            try expectExpiresWithin(ttl, .seconds(20))
            if case .expiresIn(let left) = ttl { #expect(left > .seconds(10), "PEXPIRE replaces the TTL") }
        },
        ConformanceCase("expiry: a watched key that expires conflicts the transaction") { t async throws in
            let key = t.key("k")
            // The key must be alive when the watch begins (Redis ignores a key that had already
            // expired then) and gone at commit. Alive inside `body` proves alive at the watch;
            // if a slow start let it expire first, the attempt proves nothing: retry, longer.
            for lifetime in [200, 1_000, 5_000] {
                try await t.broker.set(key, to: "v", expiry: .after(.milliseconds(lifetime)))
                let attempt = try await t.broker.attemptTransaction(watching: [key]) {
                    let aliveAtStart = try await t.broker.get(key) != nil
                    if aliveAtStart {
                        try await eventually("the watched key to expire") { try await t.peer.get(key) == nil }
                    }
                    return Transaction(
                        commands: [.set(key: key, value: "mine".bytes, expiry: .never, condition: .always)],
                        value: aliveAtStart)
                }
                switch attempt {
                case .conflicted:
                    #expect(try await t.broker.get(key) == nil)
                    return
                case .committed(let aliveAtStart, _):
                    #expect(!aliveAtStart, "the key expired while watched, yet the transaction committed")
                    if aliveAtStart { return }
                    try await t.broker.delete(key)
                }
            }
            Issue.record("the key expired before every watch began; the case could not be checked")
        },
    ]

    /// Expects `.expiresIn(d)` with `0 < d <= limit`.
    static func expectExpiresWithin(
        _ ttl: TimeToLive, _ limit: Duration, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        guard case .expiresIn(let left) = ttl else {
            Issue.record("expected a TTL of at most \(limit), got \(ttl)", sourceLocation: sourceLocation)
            return
        }
        #expect(left > .zero && left <= limit, "TTL \(left) not in (0, \(limit)]", sourceLocation: sourceLocation)
    }
}
