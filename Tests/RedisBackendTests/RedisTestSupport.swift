import Broker
import BrokerTesting
import Foundation
import Logging
import RedisBackend
import Testing

/// Where the tests find Redis: `scripts/test.sh` (`make test`) starts a private redis-server and
/// exports its URL. Without the variable the Redis tests are skipped (Swift Testing lists them
/// as skipped with the reason below); with `SWITCHBOARD_REQUIRE_REDIS=1` a missing or
/// unreachable Redis fails the run instead (see `RedisAvailabilityTests`).
enum RedisTestServer {
    static let url: String? = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_REDIS_URL"]
    static let required = ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_REDIS"] == "1"
    static let isConfigured = url != nil
    static let skipReason: Comment =
        "SWITCHBOARD_TEST_REDIS_URL is not set: Redis tests skipped (run scripts/test.sh or make test)"

    /// A key prefix no other test uses, so tests can share one server.
    static func uniquePrefix(_ label: String = #function) -> String {
        "test:\(label.prefix { $0 != "(" }):\(UUID().uuidString.prefix(8)):"
    }
}

/// Runs `body` with a ``RedisBroker`` whose `run()` is running, then shuts it down.
func withRedisBroker<Result: Sendable>(
    url: String? = RedisTestServer.url,
    configure: (inout RedisConfiguration) -> Void = { _ in },
    _ body: (RedisBroker) async throws -> Result
) async throws -> Result {
    var configuration = try RedisConfiguration(url: try #require(url))
    configuration.initialBackoff = .milliseconds(20)
    configuration.maximumBackoff = .milliseconds(300)
    configure(&configuration)
    var logger = Logger(label: "test.redis")
    logger.logLevel = .warning
    let broker = RedisBroker(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await broker.run() }
        do {
            let result = try await body(broker)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// Waits for `condition` to hold, checking after each yield, up to `timeout`.
func eventually(
    timeout: Duration = .seconds(10), _ condition: () async throws -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// The next message of `subscription`, or `nil` if none comes within `timeout`.
func nextMessage(_ subscription: Subscription, timeout: Duration = .seconds(10)) async throws -> ChannelMessage? {
    try await withThrowingTaskGroup(of: ChannelMessage?.self) { group in
        group.addTask {
            var iterator = subscription.makeAsyncIterator()
            return try await iterator.next()
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// The whole broker conformance suite, cases in parallel, on a broker and a peer of
/// `configuration` (another way to reach a server: TLS, a Unix socket), each first warmed up
/// with `warmUp` idle dedicated connections, as ``RedisConformanceTests`` runs it on TCP;
/// then `check`, while the brokers are still connected.
func runConformanceSuite(
    over configuration: RedisConfiguration, warmUp: (broker: Int, peer: Int), label: String,
    then check: () throws -> Void = {}
) async throws {
    var configuration = configuration
    configuration.dedicatedPoolSize = 64
    var logger = Logger(label: "test.redis.\(label)")
    logger.logLevel = .warning
    let broker = RedisBroker(configuration: configuration, logger: logger)
    let peer = RedisBroker(configuration: configuration, logger: logger)
    defer {
        broker.shutdown()
        peer.shutdown()
    }
    #expect(await eventually(timeout: .seconds(20)) { (try? await broker.ping()) != nil }, "the \(label) server answers")
    try await broker.warmUp(dedicatedConnections: warmUp.broker)
    try await peer.warmUp(dedicatedConnections: warmUp.peer)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for check in BrokerConformance.cases {
            group.addTask { try await check.run(on: broker, peer: peer) }
        }
        try await group.waitForAll()
    }
    try check()
}

/// With `broker` connected to `server`: a subscription on `channel` hears a message; the
/// server is killed and started again by `restart`; calls fail meanwhile, then the broker
/// reconnects on its own and the same subscription hears the next message.
func expectReconnect(
    of broker: RedisBroker, killing server: RedisServerProcess, channel: String, restart: () throws -> Void
) async throws {
    #expect(await eventually { (try? await broker.ping()) != nil }, "the redis-server came up")
    try await broker.subscribe(to: channel) { subscription in
        #expect(try await broker.publish("before", to: channel) == 1)
        #expect(try await nextMessage(subscription)?.payload == Array("before".utf8))
        await server.kill()
        #expect(await eventually { (try? await broker.ping()) == nil }, "calls fail during the outage")
        try restart()
        #expect(await eventually { (try? await broker.ping()) != nil }, "the broker reconnected")
        #expect(await eventually { ((try? await broker.publish("after", to: channel)) ?? 0) == 1 })
        #expect(try await nextMessage(subscription)?.payload == Array("after".utf8))
    }
}
