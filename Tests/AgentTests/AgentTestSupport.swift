import Broker
import BrokerTesting
import Foundation
import Logging
import MemoryBackend
import RedisBackend
import ServiceLifecycle
import Synchronization
import Testing

extension Subscription {
    /// Reads status updates until `predicate` holds for all read so far (deadline `limit`).
    func statuses(
        after earlier: [StatusUpdate] = [], within limit: Duration = .seconds(10), _ what: String,
        until predicate: @escaping @Sendable ([StatusUpdate]) -> Bool
    ) async throws -> [StatusUpdate] {
        if predicate(earlier) { return earlier }
        return try await withDeadline(what, within: limit) {
            var all = earlier
            for try await message in self {
                all.append(try JSONDecoder().decode(StatusUpdate.self, from: Data(message.payload)))
                if predicate(all) { return all }
            }
            throw ConformanceFailure("did not get \(what) (subscription ended)")
        }
    }
}

/// Test fixtures: job creation in the SPEC's format and an agent under a service group.
enum Fixture {
    static let logger: Logger = {
        var logger = Logger(label: "agent-tests")
        logger.logLevel = .error
        return logger
    }()

    /// Stores a job record (TTL 24 h) and LPUSHes its id, in one atomic step, as the gateway does.
    @discardableResult
    static func enqueue(
        _ broker: any Broker, names: JobNames, id: String = "\(UInt64.random(in: 0...UInt64.max))",
        user: String = "user-1", payload: JSONValue
    ) async throws -> String {
        let now = "2025-11-11T10:30:00.000Z"
        let record = JobRecord(
            jobId: id, type: names.type, user: .init(publicKey: user), payload: payload, createdAt: now,
            updatedAt: now, history: [.init(status: .created, timestamp: now)])
        _ = try await broker.execute(
            [
                .set(
                    key: names.record(id), value: Array(try JSONEncoder().encode(record)),
                    expiry: .after(JobNames.recordLifetime), condition: .always),
                .push([Array(id.utf8)], end: .head, queue: names.queue),
            ], atomically: true)
        return id
    }

    /// Runs `agent` with `broker` in a service group while `body` runs with a subscription to
    /// the status channel, then shuts the group down gracefully and waits for it to end.
    static func withAgent<Handler: JobHandler, Result: Sendable>(
        _ agent: Agent<Handler>, on broker: any Broker,
        _ body: @escaping @Sendable (Subscription, ServiceGroup) async throws -> Result
    ) async throws -> Result {
        try await broker.subscribe(to: agent.configuration.names.statusChannel) { subscription in
            let group = ServiceGroup(services: [agent], logger: logger)
            return try await withThrowingTaskGroup(of: Result?.self) { tasks in
                tasks.addTask {
                    try await group.run()
                    return nil
                }
                let result = try await body(subscription, group)
                await group.triggerGracefulShutdown()
                tasks.addTask {
                    try await Task.sleep(for: .seconds(10))
                    throw ConformanceFailure("did not get the agent to stop")
                }
                _ = try await tasks.next()  // the group's end, or the deadline's error
                tasks.cancelAll()
                return result
            }
        }
    }
}

/// A handler that fails transiently a given number of times, then does the demo work.
final class FlakyHandler: JobHandler {
    let failures: Int
    let calls = Mutex(0)

    init(failures: Int) { self.failures = failures }

    func handle(_ job: JobRecord) async throws -> JSONValue {
        let call = calls.withLock { calls in
            calls += 1
            return calls
        }
        if call <= failures { throw JobFailure.transient("upstream unavailable (call \(call))") }
        return try await DemoRebalanceHandler().handle(job)
    }
}

/// A handler that counts its calls and runs the demo handler.
final class CountingHandler: JobHandler {
    let calls = Mutex(0)
    func handle(_ job: JobRecord) async throws -> JSONValue {
        calls.withLock { $0 += 1 }
        return try await DemoRebalanceHandler().handle(job)
    }
}

/// Short timings so retries and reaps happen within a test's time.
func fastConfiguration(
    _ names: JobNames, concurrency: Int = 1, visibilityTimeout: Duration = .seconds(30), maxAttempts: Int = 3
) -> AgentConfiguration {
    AgentConfiguration(
        names: names, concurrency: concurrency, visibilityTimeout: visibilityTimeout,
        retry: RetryPolicy(maxAttempts: maxAttempts, initialDelay: .milliseconds(5), maxDelay: .milliseconds(20)))
}

/// A backend the agent tests run on: memory always, Redis when `SWITCHBOARD_TEST_REDIS_URL` is
/// set (as `make test` does). Tests isolate themselves with a unique key prefix.
struct AgentBackend: Sendable, CustomTestStringConvertible {
    let name: String
    let run: @Sendable (_ body: @Sendable (any Broker) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    /// Runs `body` with a fresh broker of this backend, and a unique job namespace on it.
    func withBroker(_ body: @escaping @Sendable (any Broker, JobNames) async throws -> Void) async throws {
        let names = JobNames(prefix: "agent-test-\(UInt64.random(in: 0..<UInt64.max))", type: "rebalance")
        try await run { broker in try await body(broker, names) }
    }

    static let memory = AgentBackend(name: "memory") { body in try await body(MemoryBroker()) }

    static func redis(url: String) -> AgentBackend {
        AgentBackend(name: "redis") { body in
            var logger = Logger(label: "agent-tests.redis")
            logger.logLevel = .error
            let broker = try RedisBroker(url: url, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await broker.run() }
                defer { group.cancelAll() }
                try await body(broker)
            }
        }
    }

    static let redisURL = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_REDIS_URL"]

    static var all: [AgentBackend] { [memory] + (redisURL.map { [redis(url: $0)] } ?? []) }
}

/// Holds every job until ``Gate/open()``, then does the demo work; counts its calls.
final class GatedHandler: JobHandler {
    let gate: Gate
    let calls = Mutex(0)
    init(gate: Gate) { self.gate = gate }
    func handle(_ job: JobRecord) async throws -> JSONValue {
        calls.withLock { $0 += 1 }
        await gate.enter()
        return try await DemoRebalanceHandler().handle(job)
    }
}

/// A one-way gate: ``enter()`` waits until ``open()``; ``waitForEntry()`` until someone entered.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var entered = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func enter() async {
        await withCheckedContinuation { continuation in
            let passes = state.withLock { state in
                state.entered = true
                if state.isOpen { return true }
                state.waiting.append(continuation)
                return false
            }
            if passes { continuation.resume() }
        }
    }

    func waitForEntry() async {
        while !state.withLock({ $0.entered }) { try? await Task.sleep(for: .milliseconds(5)) }
    }

    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}
