import Broker
import BrokerTesting
import Logging
import RedisBackend
import Synchronization
import Testing

/// Kills the Redis server mid-run (SIGKILL) and starts it again on the same port. The broker
/// must fail calls fast during the outage, reconnect by itself, resubscribe live subscriptions
/// without the test doing anything, and let a blocked consumer carry on.
@Suite(
    "Redis faults",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason),
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct FaultTests {
    @Test(.timeLimit(.minutes(1)))
    func survivesARestartOfRedis() async throws {
        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            try await broker.subscribe(to: "fault:channel") { subscription in
                let resumptions = Atomic(0)
                subscription.onResumedAfterLoss { resumptions.add(1, ordering: .relaxed) }
                #expect(try await broker.publish("before", to: "fault:channel") == 1)
                #expect(try await nextMessage(subscription)?.payload == Array("before".utf8))

                // A consumer blocked across the outage.
                async let popped = broker.blockingPop(from: .head, of: ["fault:queue"], timeout: .seconds(45))
                #expect(await eventually { (try? await broker.clientsBlocked()) == 1 })

                await server.kill()

                // During the outage calls fail with connectionLost (they return: no hang).
                #expect(await eventually {
                    do {
                        try await broker.ping()
                        return false
                    } catch let error as BrokerError {
                        return error.code == .connectionLost
                    } catch {
                        return false
                    }
                })
                await #expect(throws: BrokerError(.connectionLost, "")) {
                    do {
                        _ = try await broker.get("fault:key")
                    } catch let error as BrokerError {
                        throw BrokerError(error.code, "")
                    }
                }

                // Also from a task that prefers the (now gone) command connection's thread.
                await #expect(throws: BrokerError.self) {
                    try await withTaskExecutorPreference(broker.commandExecutor) { () async throws -> Void in
                        _ = try await broker.get("fault:key")
                    }
                }

                try server.start()
                #expect(await eventually { (try? await broker.ping()) != nil }, "the broker reconnected")

                // The subscription is back without resubscribing here.
                #expect(await eventually { ((try? await broker.publish("after", to: "fault:channel")) ?? 0) == 1 })
                #expect(try await nextMessage(subscription)?.payload == Array("after".utf8))
                // The consumer was told, once, that messages published meanwhile were missed.
                #expect(resumptions.load(ordering: .relaxed) == 1)

                // The blocked consumer retried on a fresh connection and gets what is pushed now.
                #expect(await eventually { (try? await broker.clientsBlocked()) == 1 })
                try await broker.push("after-restart", to: .tail, of: "fault:queue")
                #expect(try await popped == PoppedValue(queue: "fault:queue", value: Array("after-restart".utf8)))
            }
            #expect(broker.reconnectCount >= 2, "the command and subscriber connections both reconnected")
        }
        await server.kill()
    }

    /// Redis down when the broker starts: the failed attempts log warnings, and once Redis is
    /// up each role says so once ("redis connected"), so an operator sees the recovery.
    @Test(.timeLimit(.minutes(1)))
    func aFirstConnectionAfterFailedAttemptsIsLoggedOnce() async throws {
        let server = try RedisServerProcess()  // not started: nothing listens on its port yet
        let lines = LoggedLines()
        let broker = try Self.broker(url: server.url, logTo: lines)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            #expect(await eventually { lines.values(of: "role", where: "redis connection attempt failed").count >= 2 })
            try server.start()
            #expect(await eventually { (try? await broker.ping()) != nil }, "the broker connected")
            #expect(await eventually { lines.values(of: "role", where: "redis connected").sorted() == ["commands", "subscriber"] })
            try await broker.ping()
            #expect(lines.values(of: "role", where: "redis connected").sorted() == ["commands", "subscriber"], "once per role")
            #expect(lines.values(of: "role", where: "redis reconnected").isEmpty)
            group.cancelAll()
        }
        await server.kill()
    }

    /// The normal start, Redis up at the first try, stays quiet.
    @Test(.timeLimit(.minutes(1)))
    func aFirstConnectionAtTheFirstTryIsNotLogged() async throws {
        let lines = LoggedLines()
        let broker = try Self.broker(url: try #require(RedisTestServer.url), logTo: lines)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            let channel = RedisTestServer.uniquePrefix() + "channel"
            // A delivered message proves both the command and the subscriber connection are up.
            try await broker.subscribe(to: channel) { subscription in
                #expect(await eventually { ((try? await broker.publish("x", to: channel)) ?? 0) == 1 })
                let message = try await nextMessage(subscription)
                #expect(message?.payload == Array("x".utf8))
            }
            #expect(lines.messages.isEmpty, "\(lines.messages)")
            group.cancelAll()
        }
    }

    /// Redis down when the brokers start, then up: once a broker answers a ping, a subscribe
    /// works at once. Each role had its own backoff, so the subscriber could still sit out
    /// its delay (up to the maximum backoff) after the command connection was back, and
    /// `subscribe` failed with "redis is unreachable": the flakiness of
    /// `survivesARestartOfRedis`, whose server is not listening yet when the broker starts.
    /// Which role retries first is random, so several brokers try; each had an even chance.
    @Test(.timeLimit(.minutes(1)))
    func aSubscribeRightAfterTheFirstPingWorksWhenRedisCameUpLate() async throws {
        let server = try RedisServerProcess()  // not started: nothing listens on its port yet
        let logs = (0..<6).map { _ in LoggedLines() }
        // Delays of 0.5 to 1 s after the first failure: a wide window between the roles.
        let brokers = try logs.map { try Self.broker(url: server.url, logTo: $0, initialBackoff: .seconds(1)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for broker in brokers { group.addTask { try await broker.run() } }
            for lines in logs {
                #expect(await eventually {
                    lines.values(of: "role", where: "redis connection attempt failed").sorted() == ["commands", "subscriber"]
                })
            }
            try server.start()
            let failures = await withTaskGroup(of: String?.self) { checks in
                for (index, broker) in brokers.enumerated() {
                    checks.addTask {
                        guard await eventually({ (try? await broker.ping()) != nil }) else { return "no ping" }
                        do {
                            try await broker.subscribe(to: "fault:late-\(index)") { _ in }
                            return nil
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await checks.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
            }
            #expect(failures.isEmpty)
            group.cancelAll()
        }
        await server.kill()
    }

    private static func broker(
        url: String, logTo lines: LoggedLines, initialBackoff: Duration = .milliseconds(20)
    ) throws -> RedisBroker {
        var configuration = try RedisConfiguration(url: url)
        configuration.initialBackoff = initialBackoff
        configuration.maximumBackoff = max(initialBackoff, .milliseconds(300))
        var logger = Logger(label: "test.redis") { _ in lines }
        logger.logLevel = .info
        return RedisBroker(configuration: configuration, logger: logger)
    }

    /// A subscriber cancelled while Redis hangs (a gateway's router on SIGTERM) leaves within
    /// the command timeout: the UNSUBSCRIBE that gets no answer is cut off by the watchdog. The
    /// watchdog was a child task, cancelled with its caller before it could fire, so leaving
    /// waited for Redis to come back and the gateway did not exit.
    @Test(.timeLimit(.minutes(1)))
    func aSubscriptionCancelledWhileRedisHangsEnds() async throws {
        let server = try RedisServerProcess()
        try server.start()
        defer { server.resume() }
        try await withRedisBroker(url: server.url, configure: { $0.commandTimeout = .milliseconds(300) }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            let ended = Atomic<Bool>(false)
            let subscriber = Task {
                try? await broker.subscribe(to: "fault:hung-channel") { subscription in
                    for try await _ in subscription {}
                }
                ended.store(true, ordering: .relaxed)
            }
            #expect(await eventually { ((try? await broker.publish("x", to: "fault:hung-channel")) ?? 0) == 1 })
            server.pause()
            subscriber.cancel()
            #expect(await eventually(timeout: .seconds(5)) { ended.load(ordering: .relaxed) },
                    "the cancelled subscriber returned while Redis was stopped")
            server.resume()
            await subscriber.value
        }
        await server.kill()
    }

    /// A Redis at `maxmemory` (policy `noeviction`) refuses writes with `OOM …`: callers get
    /// ``BrokerError/Code/outOfMemory`` (the gateway tells clients so), reads still work, and
    /// writes work again once memory is freed, on the same connection.
    @Test(.timeLimit(.minutes(1)))
    func writesRefusedForMemoryAreOutOfMemory() async throws {
        let server = try RedisServerProcess()
        // One byte: every write is over the limit.
        try server.start(["--maxmemory", "1", "--maxmemory-policy", "noeviction"])
        try await withRedisBroker(url: server.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            do {
                try await broker.set("fault:oom", to: "v")
                Issue.record("a write was accepted over maxmemory")
            } catch let error as BrokerError {
                #expect(error.code == .outOfMemory, "\(error)")
            }
            #expect(try await broker.string("fault:oom") == nil)
            try server.configure(["maxmemory", "0"])
            try await broker.set("fault:oom", to: "v")
            #expect(try await broker.string("fault:oom") == "v")
        }
        await server.kill()
    }

    /// After a failover the old primary is a replica that refuses writes (`READONLY`) on the
    /// connections clients still hold. The broker reports ``BrokerError/Code/readOnly`` and
    /// reopens the connection, so that an address now naming the new primary reaches it.
    @Test(.timeLimit(.minutes(1)))
    func aReplicaRefusingWritesMakesTheConnectionReopen() async throws {
        let primary = try RedisServerProcess()
        try primary.start()
        let replica = try RedisServerProcess()
        try replica.start(["--replicaof", "127.0.0.1", "\(primary.port)"])
        func commandsConnection() throws -> Substring? {
            try replica.cli(["CLIENT", "LIST"]).split(separator: "\n")
                .first { $0.contains("name=switchboard-commands") }?
                .split(separator: " ").first
        }
        try await withRedisBroker(url: replica.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the replica came up")
            let before = try #require(try commandsConnection())
            do {
                try await broker.set("fault:readonly", to: "v")
                Issue.record("a replica accepted a write")
            } catch let error as BrokerError {
                #expect(error.code == .readOnly, "\(error)")
                #expect(error.isOutage)
            }
            #expect(await eventually { (try? commandsConnection()).flatMap { $0 } .map { $0 != before } ?? false },
                    "a new command connection")
            _ = try replica.cli(["REPLICAOF", "NO", "ONE"])
            #expect(await eventually { (try? await broker.set("fault:readonly", to: "v")) != nil }, "writes once promoted")
        }
        await replica.kill()
        await primary.kill()
    }

    /// An agent stopping while Redis hangs cancels its blocked take. The `CLIENT UNBLOCK` that
    /// would end it cannot go out; the take must return anyway. It used to retry at once on the
    /// closed command connection, recursively, until the stack overflowed (a crash on SIGTERM).
    @Test(.timeLimit(.minutes(1)))
    func aBlockedPopCancelledWhileRedisHangsReturns() async throws {
        let server = try RedisServerProcess()
        try server.start()
        defer { server.resume() }
        try await withRedisBroker(url: server.url, configure: { $0.commandTimeout = .milliseconds(300) }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            let consumer = Task {
                try await broker.blockingPop(from: .head, of: ["fault:hung-queue"], timeout: .seconds(45))
            }
            #expect(await eventually { (try? await broker.clientsBlocked()) == 1 })
            server.pause()
            // CLIENT UNBLOCK goes out on the command connection, times out with it, and the
            // connection closes while its completion runs.
            consumer.cancel()
            let outcome = await consumer.result
            if case .success(let value) = outcome { #expect(value == nil, "a cancelled pop returns nothing") }
            server.resume()
            #expect(await eventually { (try? await broker.ping()) != nil }, "the broker reconnected")
        }
        await server.kill()
    }
}
