import Broker
import BrokerTesting
import Foundation
import Logging
import MemoryBackend
import RedisBackend
import Testing

/// A backend the job tests run on. Add a case here to run every parameterised test on it.
///
/// Tests isolate themselves by unique prefixes and user ids, so a shared server (Redis) needs
/// no flushing between tests.
struct TestBackend: Sendable, CustomTestStringConvertible {
    let name: String
    /// Runs the body with a fresh broker whose background work (if any) is running.
    let run: @Sendable (_ body: @Sendable (any Broker) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    /// Runs `body` with a broker of this backend.
    func withBroker(_ body: @escaping @Sendable (any Broker) async throws -> Void) async throws {
        try await run(body)
    }

    static let memory = TestBackend(name: "memory") { body in try await body(MemoryBroker()) }

    /// A ``RedisBroker`` on `SWITCHBOARD_TEST_REDIS_URL` (set by `make test`), running for the
    /// duration of the body.
    static func redis(url: String) -> TestBackend {
        TestBackend(name: "redis") { body in
            var configuration = try RedisConfiguration(url: url)
            configuration.initialBackoff = .milliseconds(20)
            configuration.maximumBackoff = .milliseconds(300)
            var logger = Logger(label: "test.redis")
            logger.logLevel = .warning
            let broker = RedisBroker(configuration: configuration, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await broker.run() }
                defer { group.cancelAll() }
                try await body(broker)
            }
        }
    }

    static let redisURL = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_REDIS_URL"]

    /// Every backend available in this environment: memory always, Redis when
    /// `SWITCHBOARD_TEST_REDIS_URL` is set (``JobsOnRedisAvailability`` reports the skip).
    static var all: [TestBackend] {
        [memory] + (redisURL.map { [redis(url: $0)] } ?? [])
    }
}

@Suite("Job tests on Redis")
struct JobsOnRedisAvailability {
    /// Shows as skipped, with the reason, when Redis is not configured; under `make test`
    /// (`SWITCHBOARD_REQUIRE_REDIS=1`) a missing Redis fails instead.
    @Test(.enabled(if: TestBackend.redisURL != nil || ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_REDIS"] == "1",
        "SWITCHBOARD_TEST_REDIS_URL is not set: the job tests ran on memory only"))
    func redisIsConfigured() async throws {
        let url = try #require(TestBackend.redisURL, "SWITCHBOARD_REQUIRE_REDIS=1 but SWITCHBOARD_TEST_REDIS_URL is unset")
        try await TestBackend.redis(url: url).withBroker { broker in try await broker.ping() }
    }
}

/// A fresh, unique name for keys and users of one test.
func unique(_ base: String) -> String {
    "\(base)-\(UInt64.random(in: 0..<UInt64.max), radix: 36)"
}

extension String.StringInterpolation {
    mutating func appendInterpolation(_ value: UInt64, radix: Int) {
        appendLiteral(String(value, radix: radix))
    }
}

extension Session {
    /// The next event, or throws ``ConformanceFailure`` after `limit` (or if the session ended).
    func nextEvent(within limit: Duration = .seconds(10)) async throws -> RoutedEvent {
        let event = try await withDeadline("an event on \(self)", within: limit) { () -> RoutedEvent? in
            var iterator = self.makeAsyncIterator()
            return await iterator.next()
        }
        guard let event else { throw ConformanceFailure("timed out waiting for an event on \(self) (session ended: \(closeReason.map { "\($0)" } ?? "?"))") }
        return event
    }

    /// The next `count` events.
    func nextEvents(_ count: Int, within limit: Duration = .seconds(10)) async throws -> [RoutedEvent] {
        var events: [RoutedEvent] = []
        for _ in 0..<count { events.append(try await nextEvent(within: limit)) }
        return events
    }
}

/// Runs routers (one per "node") on `broker` for the duration of `body`.
func withRouters<T: Sendable>(
    _ count: Int = 1, on broker: any Broker, configuration: RouterConfiguration,
    _ body: @escaping @Sendable ([Router]) async throws -> T
) async throws -> T {
    try await withRouters(onEach: Array(repeating: broker, count: count), configuration: configuration, body)
}

/// Routers (nodes), one on each of `brokers`, running while `body` runs.
func withRouters<T: Sendable>(
    onEach brokers: [any Broker], configuration: RouterConfiguration,
    _ body: @escaping @Sendable ([Router]) async throws -> T
) async throws -> T {
    let routers = brokers.map { Router(broker: $0, configuration: configuration) }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        for router in routers {
            group.addTask {
                try await router.run()
                return nil
            }
        }
        defer { group.cancelAll() }
        for router in routers {
            try await withDeadline("router subscriptions", within: .seconds(10)) { await router.waitUntilSubscribed() }
        }
        let result = try await body(routers)
        group.cancelAll()
        while try await group.next() != nil {}
        return result
    }
}

/// A third-party agent written as in the original guide: BRPOP, GET, PUBLISH.
struct GuideAgent: Sendable {
    let broker: any Broker
    let names: JobNames

    /// Takes the oldest job id (BRPOP) and reads its record (GET).
    func take() async throws -> JobRecord {
        let id = try await broker.blockingPop(from: .tail, of: names.queue, timeout: .seconds(10))
        let jobId = try #require(id.map { String(decoding: $0, as: UTF8.self) })
        let bytes = try #require(try await broker.get(names.record(jobId)))
        return try JSONDecoder().decode(JobRecord.self, from: Data(bytes))
    }

    /// Publishes a raw status message.
    func publish(_ json: String) async throws {
        try await broker.publish(json, to: names.statusChannel)
    }

    /// Publishes a status for `job`, with `userId` from its record.
    func publish(_ status: JobStatus, for job: JobRecord, extra: String = "") async throws {
        try await publish(
            #"{"jobId":"\#(job.jobId)","status":"\#(status.rawValue)","userId":"\#(job.user.publicKey)","timestamp":"2025-11-11T10:30:45.000Z"\#(extra)}"#)
    }
}
