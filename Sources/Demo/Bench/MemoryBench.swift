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
    var pairs = 2_000_000

    @Option(help: "Messages published to one subscriber.")
    var messages = 1_000_000

    @Option(help: "Messages published to the fan-out subscribers.")
    var fanoutMessages = 50_000

    @Option(help: "Subscribers in the fan-out measurement.")
    var subscribers = 100

    @Option(help: "Payload size in bytes.")
    var payloadSize = 64

    func run() async throws {
        let payload = [UInt8](repeating: 0x61, count: payloadSize)
        var table = BenchTable(
            title: "memory backend (\(pairs) pairs, \(payloadSize)-byte values)",
            headers: ["measure", "MemoryBroker", "Mutex<Deque>", "ratio"])
        for tasks in [1, 2] {
            // Warm both up once so the first measurement does not pay for page faults.
            _ = try await Self.brokerPairs(pairs / 10, tasks: tasks, payload: payload)
            _ = await Self.baselinePairs(pairs / 10, tasks: tasks, payload: payload)
            let broker = try await Self.brokerPairs(pairs, tasks: tasks, payload: payload)
            let baseline = await Self.baselinePairs(pairs, tasks: tasks, payload: payload)
            let existential = try await Self.existentialPairs(pairs, tasks: tasks, payload: payload)
            let label = "push+pop pairs, \(tasks) task\(tasks == 1 ? "" : "s")"
            table.rows.append([
                label, formatRate(broker), formatRate(baseline), String(format: "%.2fx slower", baseline / broker),
            ])
            table.rows.append([
                label + " (through any Broker)", formatRate(existential), formatRate(baseline),
                String(format: "%.2fx slower", baseline / existential),
            ])
        }
        for (count, messages) in [(1, messages), (subscribers, fanoutMessages)] {
            let rate = try await Self.fanOut(to: count, messages: messages, payload: payload)
            table.rows.append([
                "publish deliveries to \(count) subscriber\(count == 1 ? "" : "s")", formatRate(rate), "", "",
            ])
        }
        print(table.render())
    }

    /// Push+pop pairs per second on a `MemoryBroker`, `tasks` tasks each on its own share.
    static func brokerPairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async throws -> Double {
        let broker = MemoryBroker()
        let share = pairs / tasks
        let start = ContinuousClock.now
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
        return Double(share * tasks) / (ContinuousClock.now - start).seconds
    }

    /// The same through `any Broker`: the protocol's generic conveniences over `execute(_:)`,
    /// as code written against the abstraction (jobs, gateway) calls it.
    static func existentialPairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async throws -> Double {
        let broker: any Broker = MemoryBroker()
        let share = pairs / tasks
        let start = ContinuousClock.now
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
        return Double(share * tasks) / (ContinuousClock.now - start).seconds
    }

    /// The same pairs on a bare `Mutex<Deque<[UInt8]>>`.
    static func baselinePairs(_ pairs: Int, tasks: Int, payload: [UInt8]) async -> Double {
        let queue = BaselineQueue()
        let share = pairs / tasks
        let start = ContinuousClock.now
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
        return Double(share * tasks) / (ContinuousClock.now - start).seconds
    }

    /// Deliveries per second: `messages` published while `subscribers` subscriptions each
    /// consume them all; timed until the last subscriber has read the last message.
    static func fanOut(to subscribers: Int, messages: Int, payload: [UInt8]) async throws -> Double {
        let broker = MemoryBroker()
        // Large enough that nothing is dropped: every delivery is consumed and counted.
        let buffering = SubscriptionBuffering.dropNewest(capacity: messages)
        let start = try await withThrowingTaskGroup(of: Int.self) { group in
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
            let start = ContinuousClock.now
            for _ in 0..<messages {
                try await broker.publish(payload, to: "bench")
            }
            let received = try await group.reduce(0, +)
            guard received == messages * subscribers else {
                throw BrokerError(.unexpectedReply, "\(received) of \(messages * subscribers) deliveries arrived")
            }
            return start
        }
        return Double(messages * subscribers) / (ContinuousClock.now - start).seconds
    }
}

/// The baseline: a bare deque behind a mutex, shared by reference as the broker is.
final class BaselineQueue: Sendable {
    let values = Mutex(Deque<[UInt8]>())
}
