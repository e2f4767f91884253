import Broker
import RedisBackend
import Testing

@Suite("Redis basics", .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct RedisBasicsTests {
    @Test func keysListsAndCounters() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            #expect(broker.backendName == "redis")
            #expect(try await broker.get(p + "missing") == nil)
            #expect(try await broker.set(p + "k", to: "v"))
            #expect(try await broker.string(p + "k") == "v")
            #expect(try await broker.set(p + "k", to: "w", condition: .ifAbsent) == false)
            #expect(try await broker.push(["a", "b"].map { Array($0.utf8) }, to: .head, of: p + "q") == 2)
            #expect(try await broker.range(of: p + "q") == [Array("b".utf8), Array("a".utf8)])
            #expect(try await broker.increment(p + "n", by: 5) == 5)
            await #expect(throws: BrokerError.self) { try await broker.push("x", to: .tail, of: p + "k") }
            do {
                _ = try await broker.increment(p + "k")
                Issue.record("INCRBY on a non-integer must throw")
            } catch let error as BrokerError {
                #expect(error.code == .notAnInteger)
            }
            #expect(try await broker.timeToLive(of: p + "k") == .persistent)
            #expect(try await broker.expire(p + "k", after: .seconds(100)))
            guard case .expiresIn(let ttl) = try await broker.timeToLive(of: p + "k") else {
                Issue.record("expected a TTL")
                return
            }
            #expect(ttl > .seconds(90) && ttl <= .seconds(100))
            #expect(try await broker.delete(p + "k", p + "q", p + "n", p + "none") == 3)
        }
    }

    @Test func concurrentCallsArePipelinedAndMatchedInOrder() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<50 {
                    group.addTask {
                        for index in 0..<40 {
                            let key = p + "\(task):\(index)"
                            try await broker.set(key, to: "\(task)-\(index)")
                            #expect(try await broker.string(key) == "\(task)-\(index)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func atomicBatchAppliesNothingWhenOneCommandFails() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            try await broker.set(p + "s", to: "text")
            try await broker.push("x", to: .tail, of: p + "l")
            // Certain failure (list command on a string), found before applying anything.
            await #expect(throws: BrokerError.self) {
                try await broker.execute(
                    [.set(key: p + "a", value: [1], expiry: .never, condition: .always),
                     .push([[2]], end: .tail, queue: p + "s")], atomically: true)
            }
            #expect(try await broker.get(p + "a") == nil)
            // Undecidable in advance (INCRBY on a string): rolled back after the fact.
            do {
                _ = try await broker.execute(
                    [.push([[3]], end: .tail, queue: p + "l"),
                     .set(key: p + "a", value: [1], expiry: .after(.seconds(50)), condition: .always),
                     .delete(keys: [p + "s2"]),
                     .increment(key: p + "s", by: 1)], atomically: true)
                Issue.record("expected notAnInteger")
            } catch let error as BrokerError {
                #expect(error.code == .notAnInteger)
            }
            #expect(try await broker.range(of: p + "l") == [Array("x".utf8)])
            #expect(try await broker.get(p + "a") == nil)
            let replies = try await broker.execute(
                [.push([[3]], end: .tail, queue: p + "l"), .get(key: p + "s"), .pop(end: .head, queue: p + "none"),
                 .publish(payload: [1], channel: p + "c")], atomically: true)
            #expect(replies == [.integer(2), .value(Array("text".utf8)), .null, .integer(0)])
            let pipelined = try await broker.execute(
                [.push([[3]], end: .tail, queue: p + "s"), .get(key: p + "s")], atomically: false)
            #expect(pipelined.count == 2)
            if case .error(let error) = pipelined[0] { #expect(error.code == .wrongType) } else {
                Issue.record("expected a WRONGTYPE error reply, got \(pipelined[0])")
            }
            #expect(pipelined[1] == .value(Array("text".utf8)))
        }
    }

    @Test func blockingPopWaitsAndCancels() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            #expect(try await broker.blockingPop(from: .head, of: [p + "q"], timeout: .milliseconds(100)) == nil)
            // A zero timeout does not wait, but takes what is there (first non-empty queue).
            #expect(try await broker.blockingPop(from: .head, of: [p + "q"], timeout: .zero) == nil)
            try await broker.push("z", to: .tail, of: p + "z")
            #expect(try await broker.blockingPop(from: .head, of: [p + "q", p + "z"], timeout: .zero)
                == PoppedValue(queue: p + "z", value: Array("z".utf8)))
            async let popped = broker.blockingPop(from: .tail, of: [p + "q"], timeout: .seconds(10))
            #expect(await eventually { (try? await broker.clientsBlocked()) ?? 0 >= 1 })
            try await broker.push("v", to: .head, of: p + "q")
            #expect(try await popped == PoppedValue(queue: p + "q", value: Array("v".utf8)))

            let waiter = Task { try await broker.blockingPop(from: .head, of: [p + "w"], timeout: nil) }
            #expect(await eventually { (try? await broker.clientsBlocked()) ?? 0 >= 1 })
            waiter.cancel()
            #expect(try await waiter.value == nil)
            try await broker.push("later", to: .tail, of: p + "w")
            #expect(try await broker.length(of: p + "w") == 1)
            #expect(try await broker.blockingMove(from: p + "w", .head, to: p + "m", .tail, timeout: .seconds(1))
                == Array("later".utf8))
        }
    }

    @Test func subscriptionsShareOneRedisSubscription() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            try await broker.subscribe(to: p + "c") { first in
                try await broker.subscribe(to: p + "c") { second in
                    try await broker.subscribe(toPatterns: p + "*") { pattern in
                        #expect(try await broker.publish("hello", to: p + "c") == 2)
                        #expect(try await nextMessage(first)?.payload == Array("hello".utf8))
                        #expect(try await nextMessage(second)?.payload == Array("hello".utf8))
                        let matched = try await nextMessage(pattern)
                        #expect(matched?.pattern == p + "*" && matched?.channel == p + "c")
                    }
                }
                #expect(try await broker.publish("again", to: p + "c") == 1)
                #expect(try await nextMessage(first)?.payload == Array("again".utf8))
            }
            #expect(try await broker.publish("gone", to: p + "c") == 0)
        }
    }

    @Test func transactionsCommitAndConflict() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            try await broker.set(p + "k", to: "1")
            let committed = try await broker.attemptTransaction(watching: [p + "k"]) {
                Transaction(commands: [.set(key: p + "k", value: Array("2".utf8), expiry: .never, condition: .always)],
                            value: "ok")
            }
            guard case .committed("ok", let replies) = committed else {
                Issue.record("expected a commit, got \(committed)")
                return
            }
            #expect(replies == [.ok])
            let conflicted = try await broker.attemptTransaction(watching: [p + "k"]) {
                try await broker.set(p + "k", to: "other")  // a concurrent writer
                return Transaction(commands: [.delete(keys: [p + "k"])])
            }
            guard case .conflicted = conflicted else {
                Issue.record("expected a conflict")
                return
            }
            #expect(try await broker.string(p + "k") == "other")
            let updated = try await broker.update(p + "k") { current in (current ?? []) + Array("!".utf8) }
            #expect(updated == Array("other!".utf8))
        }
    }

    @Test func urlParsing() throws {
        let plain = try RedisConfiguration(url: "redis://127.0.0.1:6390")
        #expect(plain.host == "127.0.0.1" && plain.port == 6390 && plain.database == 0 && plain.password == nil)
        let full = try RedisConfiguration(url: "redis://user:p%40ss@example.com:7000/3")
        #expect(full.username == "user" && full.password == "p@ss" && full.database == 3 && full.port == 7000)
        let passwordOnly = try RedisConfiguration(url: "redis://:secret@host")
        #expect(passwordOnly.username == nil && passwordOnly.password == "secret" && passwordOnly.port == 6379)
        #expect(plain.tls == nil && plain.address == "redis://127.0.0.1:6390/0")
        let tls = try RedisConfiguration(url: "rediss://default:pw@cache.example.com:6380")
        #expect(tls.tls == RedisTLS() && tls.host == "cache.example.com" && tls.port == 6380 && tls.password == "pw")
        #expect(tls.address == "rediss://cache.example.com:6380/0")
        #expect(try RedisConfiguration(url: "REDISS://host").tls != nil)
        #expect(throws: BrokerError.self) { try RedisConfiguration(url: "http://host") }
        #expect(throws: BrokerError.self) { try RedisConfiguration(url: "redis://host:notaport") }
    }
}

extension RedisBroker {
    /// `blocked_clients` from `INFO clients`, to await a blocked consumer without sleeping.
    func clientsBlocked() async throws -> Int {
        try await serverInfo("clients")["blocked_clients"].flatMap { Int($0) } ?? 0
    }
}
