import Broker
import BrokerTesting
import MemoryBackend
import ServiceLifecycle
import Testing

/// Finishes a job only once graceful shutdown has begun: proves in-flight work is drained.
struct WaitsForShutdownHandler: JobHandler {
    func handle(_ job: JobRecord) async throws -> JSONValue {
        if job.payload["waitForShutdown"] == true { try await gracefulShutdown() }
        return try await DemoRebalanceHandler().handle(job)
    }
}

@Suite("Graceful shutdown")
struct ShutdownTests {

    @Test("a job in flight at shutdown still finishes and publishes done; no job is taken after",
          arguments: AgentBackend.all)
    func drainsInFlight(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: WaitsForShutdownHandler(), configuration: fastConfiguration(names),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, group in
                try await Fixture.enqueue(broker, names: names, id: "slow", payload: ["amount": 100, "waitForShutdown": true])
                let started = try await subscription.statuses("slow processing") { $0.contains { $0.jobId == "slow" } }
                // The only worker is busy: this one waits in the queue while shutdown begins.
                try await Fixture.enqueue(broker, names: names, id: "late", payload: ["amount": 1])
                await group.triggerGracefulShutdown()
                return try await subscription.statuses(after: started, "slow done") { $0.contains { $0.status == .done } }
            }
            #expect(statuses.map(\.jobId) == ["slow", "slow"])
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(statuses.last?.result?["fee"]?.doubleValue == 2)
            #expect(try await broker.range(of: names.queue) == [Array("late".utf8)])
            #expect(try await broker.length(of: names.processing) == 0)
            #expect(agent.statistics.taken == 1)
        }
    }

    @Test("idle workers blocked on an empty queue stop promptly", arguments: AgentBackend.all)
    func idleWorkersStop(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names, concurrency: 4),
                logger: Fixture.logger)
            // withAgent fails if the agent has not stopped within its deadline after shutdown.
            _ = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, payload: ["amount": 1])
                return try await subscription.statuses("done") { $0.contains { $0.status == .done } }
            }
            try await Fixture.enqueue(broker, names: names, id: "after", payload: ["amount": 1])
            #expect(try await broker.length(of: names.queue) == 1)
            #expect(agent.statistics.taken == 1)
        }
    }
}

@Suite("Cancellation")
struct CancellationTests {
    /// Runs until cancelled.
    struct EndlessHandler: JobHandler {
        func handle(_ job: JobRecord) async throws -> JSONValue {
            try await Task.sleep(for: .seconds(3600))
            return nil
        }
    }

    @Test("a cancelled agent abandons its job without losing it", arguments: AgentBackend.all)
    func cancellationLosesNothing(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: EndlessHandler(), configuration: fastConfiguration(names),
                logger: Fixture.logger)
            try await broker.subscribe(to: names.statusChannel) { subscription in
                // The deadline covers the cancelled agent's return too.
                try await withDeadline("the cancelled agent to return", within: .seconds(20)) {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await agent.run() }
                        try await Fixture.enqueue(broker, names: names, id: "endless", payload: ["amount": 1])
                        _ = try await subscription.statuses("processing") { $0.contains { $0.jobId == "endless" } }
                        group.cancelAll()
                        try await group.waitForAll()
                    }
                }
            }
            #expect(agent.statistics.abandoned == 1)
            // Put straight back when the broker still answers; otherwise left taken for the reaper.
            let waiting = try await broker.range(of: names.queue)
            let taken = try await broker.range(of: names.processing)
            #expect((waiting + taken).map { String(decoding: $0, as: UTF8.self) } == ["endless"])
        }
    }
}
