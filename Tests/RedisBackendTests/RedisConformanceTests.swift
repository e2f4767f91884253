import Broker
import BrokerTesting
import Logging
import RedisBackend
import Testing

/// The shared broker conformance suite against a real redis-server. The cases run in parallel
/// on one ``RedisBroker`` (each case has its own key prefix, as on a shared production
/// server), with a second broker, with its own connections, as the peer standing for another
/// gateway node. Sharing keeps the connections warm, as in production: a case that depends on
/// timing (a 50 ms TTL racing a `WATCH`) is not disturbed by 100 brokers connecting at once.
///
/// The cases run in parallel, so the shared command connection also pipelines their traffic.
@Suite(
    "RedisConformance",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct RedisConformanceTests {
    /// Connected on first use; no `run()` is needed for that (it only adds proactive reconnects).
    static let brokers: (broker: RedisBroker, peer: RedisBroker)? = {
        guard let url = RedisTestServer.url, var configuration = try? RedisConfiguration(url: url) else { return nil }
        configuration.dedicatedPoolSize = 64
        var logger = Logger(label: "test.redis.conformance")
        logger.logLevel = .warning
        return (RedisBroker(configuration: configuration, logger: logger),
                RedisBroker(configuration: configuration, logger: logger))
    }()

    /// Connects both brokers, with idle dedicated connections, before the first case, as a
    /// gateway that has been up for a while is.
    static let warm = Task {
        guard let (broker, peer) = brokers else { return }
        try await broker.warmUp(dedicatedConnections: 16)
        try await peer.warmUp(dedicatedConnections: 4)
    }

    @Test(arguments: BrokerConformance.cases)
    func conformance(_ check: ConformanceCase) async throws {
        let (broker, peer) = try #require(Self.brokers)
        try await Self.warm.value
        try await check.run(on: broker, peer: peer)
    }
}
