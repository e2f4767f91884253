import ArgumentParser
import Broker
import DequeModule
import Foundation
import MemoryBackend
import Synchronization

/// `switchboard bench memory`: MemoryBroker queue and fan-out throughput, next to a plain
/// `Mutex<Deque<[UInt8]>>` so the cost of the broker's semantics is visible.
struct MemoryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Push+pop pairs against a Mutex<Deque> baseline, and publish fan-out, on the memory backend."
    )

    @Option(help: "Push+pop pairs per queue measurement.")
    var pairs = 1_000_000

    @Option(help: "Rounds of each measurement; the best is shown (other work on the machine only slows a run down).")
    var rounds = 3

    @Option(help: "Messages published to one subscriber.")
    var messages = 1_000_000

    @Option(help: "Messages published to the fan-out subscribers.")
    var fanoutMessages = 50_000

    @Option(help: "Subscribers in the fan-out measurement.")
    var subscribers = 100

    @Option(help: "Payload size in bytes.")
    var payloadSize = 64

    @Option(help: "Keys with a TTL in the expiry sweep measurement.")
    var expiringKeys = 1_000_000

    @Option(help: "Run one measurement alone, for profiling: queue, any-broker-queue, fanout or expiry.")
    var only: String?

    func run() async throws {
        let payload = [UInt8](repeating: 0x61, count: payloadSize)
        switch only {
        case nil: break
        case "queue":
            print("push+pop pairs, 1 task: \(try await Self.brokerPairs(pairs, tasks: 1, payload: payload))")
            return
        case "any-broker-queue":
            print("push+pop pairs through any Broker: \(try await Self.existentialPairs(pairs, tasks: 1, payload: payload))")
            return
        case "fanout":
            let result = try await Self.fanOut(to: subscribers, messages: fanoutMessages, payload: payload)
            print("publish deliveries to \(subscribers) subscribers: \(result)")
            return
        case "expiry":
            print(try await Self.expirySweep(keys: expiringKeys, payload: payload))
            return
        case let other?:
            throw ValidationError("--only takes queue, any-broker-queue, fanout or expiry, not \(other)")
        }
        var table = BenchTable(
            title: "memory backend: \(pairs) pairs, \(payloadSize)-byte values, best of \(rounds) rounds "
                + "(CPU = process CPU time per operation, unaffected by other load on the machine)",
            headers: ["measure", "rate", "CPU/op", "Mutex<Deque> rate", "CPU/op", "ratio (rate)", "ratio (CPU)"])
        for tasks in [1, 2] {
            // Warm both up once so the first measurement does not pay for page faults.
            _ = try await Self.brokerPairs(pairs / 10, tasks: tasks, payload: payload)
            _ = await Self.baselinePairs(pairs / 10, tasks: tasks, payload: payload)
            var broker = Measurement.worst, baseline = Measurement.worst, existential = Measurement.worst
            // Interleaved rounds, so that a burst of other load hits all three alike.
            for _ in 0..<max(1, rounds) {
                broker = broker.best(try await Self.brokerPairs(pairs, tasks: tasks, payload: payload))
                baseline = baseline.best(await Self.baselinePairs(pairs, tasks: tasks, payload: payload))
                existential = existential.best(try await Self.existentialPairs(pairs, tasks: tasks, payload: payload))
            }
            let label = "push+pop pairs, \(tasks) task\(tasks == 1 ? "" : "s")"
            table.rows.append(Self.row(label + ", MemoryBroker", broker, against: baseline))
            table.rows.append(Self.row(label + ", through any Broker", existential, against: baseline))
        }
        for (count, messages) in [(1, messages), (subscribers, fanoutMessages)] {
            var result = Measurement.worst
            for _ in 0..<max(1, rounds) {
                result = result.best(try await Self.fanOut(to: count, messages: messages, payload: payload))
            }
            table.rows.append([
                "publish deliveries to \(count) subscriber\(count == 1 ? "" : "s")",
                formatRate(result.rate), result.cpuText, "", "", "", "",
            ])
        }
        print(table.render())
        print(try await Self.expirySweep(keys: expiringKeys, payload: payload))
    }

    /// `keys` keys set with a 24 h TTL (as job records are), then the broker's once-a-second
    /// expiry sweep while none is due and once all are, with a task reading a key all along:
    /// its slowest read is how long the sweep kept other calls waiting.
    static func expirySweep(keys: Int, payload: [UInt8]) async throws -> String {
        let clock = ManualBenchClock()
        let broker = MemoryBroker(clock: clock)
        let setStart = ContinuousClock.now
        for key in 0..<keys {
            try await broker.set("bench:record:\(key)", to: payload, expiry: .after(.seconds(86_400)))
        }
        let setTime = setStart.duration(to: .now)
        try await broker.set("bench:probe", to: payload)
        func sweepTimed(_ expected: Int) async throws -> (took: Duration, slowestRead: Duration) {
            let sweeping = Atomic(true)
            let probe = Task.detached {
                var slowest = Duration.zero
                while sweeping.load(ordering: .relaxed) {
                    let start = ContinuousClock.now
                    _ = try await broker.get("bench:probe")
                    slowest = max(slowest, start.duration(to: .now))
                }
                return slowest
            }
            try await Task.sleep(for: .milliseconds(20))  // the probe is reading
            let start = ContinuousClock.now
            let removed = broker.sweepExpired()
            let took = start.duration(to: .now)
            sweeping.store(false, ordering: .relaxed)
            let slowest = try await probe.value
            guard removed == expected else {
                throw BrokerError(.unexpectedReply, "the sweep removed \(removed) keys, not \(expected)")
            }
            return (took, slowest)
        }
        var idle = (took: Duration.zero, slowestRead: Duration.zero)
        for _ in 0..<5 {
            clock.advance(by: .seconds(1))
            let round = try await sweepTimed(0)
            idle = (max(idle.took, round.took), max(idle.slowestRead, round.slowestRead))
        }
        clock.advance(by: .seconds(86_400))
        let due = try await sweepTimed(keys)
        func ms(_ duration: Duration) -> String { String(format: "%.2f ms", duration.seconds * 1e3) }
        return "expiry, \(keys) keys with a 24 h TTL: SET EX "
            + String(format: "%.0f ns/op", setTime.seconds * 1e9 / Double(keys))
            + "; sweep with none due \(ms(idle.took)) (slowest GET meanwhile \(ms(idle.slowestRead)), worst of 5)"
            + "; sweep of all, due \(ms(due.took)) (slowest GET meanwhile \(ms(due.slowestRead)))"
    }

    private static func row(_ label: String, _ measured: Measurement, against baseline: Measurement) -> [String] {
        [
            label, formatRate(measured.rate), measured.cpuText, formatRate(baseline.rate), baseline.cpuText,
            String(format: "%.2fx slower", baseline.rate / measured.rate),
            String(format: "%.2fx", measured.cpuPerOperation / baseline.cpuPerOperation),
        ]
    }

    /// Push+pop pairs on a `MemoryBroker`, `tasks` tasks each on its own share.
    static func brokerPairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async throws -> Measurement {
        let broker = MemoryBroker()
        let share = pairs / tasks
        return try await Measurement.of(operations: share * tasks) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<share {
                            try await broker.push(payload, to: .tail, of: "bench")
                            guard try await broker.pop(from: .head, of: "bench") != nil else {
                                throw BrokerError(.unexpectedReply, "a pushed value was not there to pop")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// The same through `any Broker`: the protocol's generic conveniences over `execute(_:)`,
    /// as code written against the abstraction (jobs, gateway) calls it.
    static func existentialPairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async throws -> Measurement {
        let broker: any Broker = MemoryBroker()
        let share = pairs / tasks
        return try await Measurement.of(operations: share * tasks) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<share {
                            try await broker.push(payload, to: .tail, of: "bench")
                            guard try await broker.pop(from: .head, of: "bench") != nil else {
                                throw BrokerError(.unexpectedReply, "a pushed value was not there to pop")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// The same pairs on a bare `Mutex<Deque<[UInt8]>>`.
    static func baselinePairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async -> Measurement {
        let queue = BaselineQueue()
        let share = pairs / tasks
        return await Measurement.of(operations: share * tasks) {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        var popped = 0
                        for _ in 0..<share {
                            queue.values.withLock { $0.append(payload) }
                            if queue.values.withLock({ $0.popFirst() }) != nil { popped += 1 }
                        }
                        return popped
                    }
                }
                let popped = await group.reduce(0, +)
                precondition(popped == share * tasks, "the baseline lost values")
            }
        }
    }

    /// Deliveries: `messages` published while `subscribers` subscriptions each consume them
    /// all; timed from the first publish until the last subscriber has read the last message.
    static func fanOut(to subscribers: Int, messages: Int, payload: [UInt8]) async throws -> Measurement {
        let broker = MemoryBroker()
        // Large enough that nothing is dropped: every delivery is consumed and counted.
        let buffering = SubscriptionBuffering.dropNewest(capacity: messages)
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<subscribers {
                group.addTask {
                    try await broker.subscribe(to: ["bench"], patterns: [], buffering: buffering) { subscription in
                        var received = 0
                        for try await _ in subscription {
                            received += 1
                            if received == messages { break }
                        }
                        return received
                    }
                }
            }
            while broker.subscriberCount < subscribers { try await Task.sleep(for: .milliseconds(1)) }
            return try await Measurement.of(operations: messages * subscribers) {
                for _ in 0..<messages {
                    try await broker.publish(payload, to: "bench")
                }
                let received = try await group.reduce(0, +)
                guard received == messages * subscribers else {
                    throw BrokerError(.unexpectedReply, "\(received) of \(messages * subscribers) deliveries arrived")
                }
            }
        }
    }
}

/// A clock the expiry measurement moves by hand (the broker only reads it there).
final class ManualBenchClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let offset = Mutex(Duration.zero)
    var now: Instant { Instant(offset: offset.withLock { $0 }) }
    var minimumResolution: Duration { .nanoseconds(1) }

    func advance(by duration: Duration) { offset.withLock { $0 += duration } }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try await Task.sleep(for: now.duration(to: deadline))
    }
}

/// The baseline: a bare deque behind a mutex, shared by reference as the broker is.
final class BaselineQueue: Sendable {
    let values = Mutex(Deque<[UInt8]>())
}

/// One timed run: operations per second of wall time, and process CPU time per operation.
struct Measurement: CustomStringConvertible {
    var rate: Double
    var cpuPerOperation: Double  // nanoseconds

    static let worst = Measurement(rate: 0, cpuPerOperation: .infinity)

    /// The better of two runs, field by field (interference only ever makes a run worse).
    func best(_ other: Measurement) -> Measurement {
        Measurement(rate: max(rate, other.rate), cpuPerOperation: min(cpuPerOperation, other.cpuPerOperation))
    }

    var cpuText: String { String(format: "%.0f ns", cpuPerOperation) }
    var description: String { "\(formatRate(rate)), \(cpuText) CPU per operation" }

    static func of(operations: Int, _ body: () async throws -> Void) async rethrows -> Measurement {
        let cpuStart = processCPUNanoseconds()
        let start = ContinuousClock.now
        try await body()
        let wall = (ContinuousClock.now - start).seconds
        let cpu = Double(processCPUNanoseconds() - cpuStart)
        return Measurement(rate: Double(operations) / wall, cpuPerOperation: cpu / Double(operations))
    }

    private static func processCPUNanoseconds() -> Int {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return time.tv_sec * 1_000_000_000 + time.tv_nsec
    }
}
