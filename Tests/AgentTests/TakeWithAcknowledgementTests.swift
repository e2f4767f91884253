import Broker
import MemoryBackend
import Synchronization
import Testing

/// The memory backend, recording every batch the agent sends.
final class RecordingBroker: Broker {
    let base = MemoryBroker()
    let batches = Mutex<[[BrokerCommand]]>([])

    var backendName: String { "recording-test" }
    var callsAreRoundTrips: Bool { true }  // as Redis: the agent plans its round trips

    func execute(_ command: BrokerCommand) async throws -> Reply {
        batches.withLock { $0.append([command]) }
        return try await base.execute(command)
    }

    func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply] {
        batches.withLock { $0.append(commands) }
        return try await base.execute(commands, atomically: atomically)
    }

    func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue? {
        try await base.blockingPop(from: end, of: queues, timeout: timeout)
    }

    func blockingMove(
        from source: String, _ sourceEnd: QueueEnd, to destination: String, _ destinationEnd: QueueEnd,
        timeout: Duration?
    ) async throws -> [UInt8]? {
        try await base.blockingMove(from: source, sourceEnd, to: destination, destinationEnd, timeout: timeout)
    }

    nonisolated(nonsending) func subscribe<Result>(
        to channels: [String], patterns: [String], buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result {
        try await base.subscribe(to: channels, patterns: patterns, buffering: buffering, body)
    }

    nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String], _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        try await base.attemptTransaction(watching: keys, body)
    }

    func ping() async throws { try await base.ping() }
}

@Suite("Agent: each acknowledgement takes the next job")
struct TakeWithAcknowledgementTests {
    @Test("on a busy queue, a job's status and the next job's take are one round trip, its removal rides with the next start")
    func acknowledgementTakesTheNextJob() async throws {
        let broker = RecordingBroker()
        let names = JobNames(prefix: "ack-take", type: "rebalance")
        for n in 0..<3 { try await Fixture.enqueue(broker, names: names, id: "job-\(n)", payload: ["amount": 10]) }
        let agent = Agent(broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names), logger: Fixture.logger)
        let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
            try await subscription.statuses("3 done") { $0.filter { $0.status == .done }.count == 3 }
        }
        #expect(statuses.filter { $0.status == .done }.map(\.jobId) == ["job-0", "job-1", "job-2"])
        let take = BrokerCommand.move(
            source: names.queue, sourceEnd: .tail, destination: names.processing, destinationEnd: .head)
        let batches = broker.batches.withLock { $0 }
        // Each acknowledgement: the done status and the next take.
        let acknowledgements = batches.filter { $0.count == 2 && $0.last == take }
        #expect(acknowledgements.count == 3)
        #expect(acknowledgements.allSatisfy { if case .publish = $0[0] { return true } else { return false } })
        // A reported job leaves the processing list with the next job's start (its lease taken,
        // its record read), the last one alone once the take found the queue empty.
        let removals = batches.filter { if case .remove = $0.first, case .delete = $0.dropFirst().first { return true } else { return false } }
        #expect(removals.map(\.count) == [4, 4, 2])
        // Only the first job needed a take of its own.
        #expect(batches.filter { $0 == [take] }.count == 1)
        #expect(try await broker.length(of: names.processing) == 0)
        #expect(agent.statistics.taken == 3 && agent.statistics.done == 3)
    }
}
