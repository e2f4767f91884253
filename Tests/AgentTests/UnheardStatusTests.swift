@testable import Broker
import BrokerTesting
import MemoryBackend
import ServiceLifecycle
import Testing

/// A status published while no gateway listens (`PUBLISH` answered 0) is published again until
/// one does: pub/sub keeps nothing, and the job's result would otherwise be lost for good.
@Suite("Unheard status updates")
struct UnheardStatusTests {
    /// Runs `agent` (with no one subscribed to its status channel) while `body` runs.
    private func running<Handler: JobHandler>(
        _ agent: Agent<Handler>, _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        let group = ServiceGroup(services: [agent], logger: Fixture.logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            try await body()
            await group.triggerGracefulShutdown()
            tasks.addTask {
                try await Task.sleep(for: .seconds(10))
                throw ConformanceFailure("did not get the agent to stop")
            }
            _ = try await tasks.next()  // the group's end, or the deadline's error
        }
    }

    @Test("a done no gateway heard reaches the first subscriber", arguments: AgentBackend.all)
    func republishedUntilHeard(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names), logger: Fixture.logger)
            try await running(agent) {
                let id = try await Fixture.enqueue(broker, names: names, user: "late", payload: ["amount": 500])
                try await eventuallyTrue("the job to be done with nobody listening") { agent.statistics.done == 1 }
                // A gateway (re)subscribes: it hears the job's done, which was published before it listened.
                let statuses = try await broker.subscribe(to: names.statusChannel) { subscription in
                    try await subscription.statuses(within: .seconds(15), "the done published again") {
                        $0.contains { $0.status == .done }
                    }
                }
                // Only the newest status of the job waits: `done` superseded the unheard `processing`.
                #expect(statuses.map(\.status) == [.done])
                #expect(statuses.first?.jobId == id && statuses.first?.userId == "late")
                #expect(statuses.first?.result?["fee"]?.doubleValue == 10)
                try await eventuallyTrue("the republish to be counted") { agent.statistics.statusesRepublished == 1 }
            }
        }
    }

    @Test("a status nobody hears within its lifetime is given up", arguments: AgentBackend.all)
    func givenUp(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            var configuration = fastConfiguration(names)
            configuration.unheardStatusLifetime = .milliseconds(300)
            let agent = Agent(broker: broker, handler: DemoRebalanceHandler(), configuration: configuration, logger: Fixture.logger)
            try await running(agent) {
                try await Fixture.enqueue(broker, names: names, payload: ["amount": 500])
                try await eventuallyTrue("the status to be given up") { agent.statistics.statusesUnheard == 1 }
                #expect(agent.statistics.statusesRepublished == 0)
                #expect(agent.statistics.done == 1)
            }
        }
    }

    private func eventuallyTrue(_ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        try await withDeadline(what, within: .seconds(15)) {
            while !condition() { try await Task.sleep(for: .milliseconds(10)) }
        }
    }
}

/// The waiting list itself, without an agent.
@Suite("Unheard status updates: what waits")
struct UnheardStatusQueueTests {
    /// A job's `done` heard drops its `processing` still waiting; the final pass at shutdown
    /// publishes only what is left, once.
    @Test func aHeardStatusDropsTheOneWaitingForItsJob() async throws {
        let broker = MemoryBroker()
        let unheard = UnheardStatuses(broker: broker, channel: "status", logger: Fixture.logger)
        unheard.add(Array("processing of j1".utf8), jobId: "j1")
        unheard.add(Array("processing of j2".utf8), jobId: "j2")
        unheard.forget(jobId: "j1")
        try await broker.subscribe(to: "status") { subscription async throws in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await unheard.run() }
                group.cancelAll()  // shutdown: what waits is published once more
            }
            var messages = subscription.makeAsyncIterator()
            #expect(try await messages.next()?.payload == Array("processing of j2".utf8))
            #expect(subscription.bufferedCount == 0)
        }
        #expect(unheard.counts.republished == 1 && unheard.counts.givenUp == 0)
    }

    /// A newer status of a job replaces the one waiting (done supersedes processing).
    @Test func aNewerStatusReplacesTheWaitingOne() async throws {
        let broker = MemoryBroker()
        let unheard = UnheardStatuses(broker: broker, channel: "status", logger: Fixture.logger)
        unheard.add(Array("processing".utf8), jobId: "j1")
        unheard.add(Array("done".utf8), jobId: "j1")
        try await broker.subscribe(to: "status") { subscription async throws in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await unheard.run() }
                group.cancelAll()
            }
            var messages = subscription.makeAsyncIterator()
            #expect(try await messages.next()?.payload == Array("done".utf8))
            #expect(subscription.bufferedCount == 0)
        }
    }
}
