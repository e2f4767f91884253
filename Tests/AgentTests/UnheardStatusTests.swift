@testable import Broker
import BrokerTesting
import MemoryBackend
import ServiceLifecycle
import Synchronization
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
                // Both waited, in order: a gateway hearing `done` first would refuse `processing` as late.
                #expect(statuses.map(\.status) == [.processing, .done])
                #expect(statuses.allSatisfy { $0.jobId == id && $0.userId == "late" })
                #expect(statuses.last?.result?["fee"]?.doubleValue == 10)
                try await eventuallyTrue("the republish to be counted") { agent.statistics.statusesRepublished == 1 }
            }
        }
    }

    /// A gateway that starts listening between the republished processing and done must not
    /// hear the done alone (it would refuse the processing as late when it came again): the
    /// republish stops at the first status nobody heard, and the rest wait with it.
    @Test("a republish stops at the first status nobody heard", arguments: AgentBackend.all)
    func republishKeepsOrderWhenOnlyALaterStatusIsHeard(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let outage = OutageBroker(base: broker)
            var configuration = fastConfiguration(names)
            configuration.unheardStatusRetry = RetryPolicy(initialDelay: .milliseconds(500), maxDelay: .milliseconds(500))
            let agent = Agent(broker: outage, handler: DemoRebalanceHandler(), configuration: configuration, logger: Fixture.logger)
            try await running(agent) {
                try await Fixture.enqueue(broker, names: names, user: "between", payload: ["amount": 500])
                try await eventuallyTrue("the job to be done with nobody listening") { agent.statistics.done == 1 }
                let statuses = try await broker.subscribe(to: names.statusChannel) { subscription in
                    // The republished processing is lost (as if published just before the gateway
                    // listened); its done would be heard.
                    outage.failOnce { commands in
                        guard case .publish(let payload, _) = commands.first else { return false }
                        return String(decoding: payload, as: UTF8.self).contains(#""status":"processing""#)
                    }
                    return try await subscription.statuses(within: .seconds(15), "the done published again") {
                        $0.contains { $0.status == .done }
                    }
                }
                #expect(statuses.map(\.status) == [.processing, .done])
            }
        }
    }

    @Test("a processing nobody heard goes out in front of its job's done", arguments: AgentBackend.all)
    func unheardProcessingPrecedesDone(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let gate = Gate()
            var configuration = fastConfiguration(names)
            // Not published again meanwhile: the job's done must be what carries it.
            configuration.unheardStatusRetry = RetryPolicy(initialDelay: .seconds(60))
            let agent = Agent(broker: broker, handler: GatedHandler(gate: gate), configuration: configuration, logger: Fixture.logger)
            try await running(agent) {
                try await Fixture.enqueue(broker, names: names, user: "early", payload: ["amount": 500])
                // The job started with nobody listening: its processing went unheard.
                try await eventuallyTrue("the job to start") { agent.statistics.taken == 1 }
                try await withDeadline("the handler to be running", within: .seconds(15)) { await gate.waitForEntry() }
                let statuses = try await broker.subscribe(to: names.statusChannel) { subscription in
                    gate.open()  // a gateway listens now; the job finishes
                    return try await subscription.statuses(within: .seconds(15), "the done") {
                        $0.contains { $0.status == .done }
                    }
                }
                #expect(statuses.map(\.status) == [.processing, .done])
                #expect(statuses.allSatisfy { $0.userId == "early" })
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
    /// What a job's next status takes goes out with it, not again; the final pass at shutdown
    /// publishes only what is left, once.
    @Test func takenStatusesAreNotPublishedAgain() async throws {
        let broker = MemoryBroker()
        let unheard = UnheardStatuses(broker: broker, channel: "status", logger: Fixture.logger)
        unheard.add([Array("processing of j1".utf8)], jobId: "j1")
        unheard.add([Array("processing of j2".utf8)], jobId: "j2")
        #expect(await unheard.take(jobId: "j1") == [Array("processing of j1".utf8)])
        #expect(await unheard.take(jobId: "j1").isEmpty)
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

    /// A job's statuses wait together and go out oldest first, after other jobs' older ones;
    /// only the newest few of a job are kept.
    @Test func aJobsStatusesArePublishedInOrder() async throws {
        let broker = MemoryBroker()
        let unheard = UnheardStatuses(broker: broker, channel: "status", logger: Fixture.logger)
        unheard.add([Array("j1 processing".utf8)], jobId: "j1")
        unheard.add([Array("j2 processing".utf8)], jobId: "j2")
        unheard.add([Array("j1 done".utf8)], jobId: "j1")
        let many = (0..<(UnheardStatuses.statusesPerJob + 2)).map { Array("j3 #\($0)".utf8) }
        unheard.add(many, jobId: "j3")
        try await broker.subscribe(to: "status") { subscription async throws in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await unheard.run() }
                group.cancelAll()
            }
            var messages = subscription.makeAsyncIterator()
            var payloads: [String] = []
            while subscription.bufferedCount > 0, let message = try await messages.next() {
                payloads.append(String(decoding: message.payload, as: UTF8.self))
            }
            #expect(payloads == ["j2 processing", "j1 processing", "j1 done"] + many.suffix(UnheardStatuses.statusesPerJob).map {
                String(decoding: $0, as: UTF8.self)
            })
        }
        #expect(unheard.counts.republished == 3)
    }

    /// A job's next status waits while its unheard ones are being published again: sent at
    /// that moment, a `done` could reach gateways before the `processing` it follows.
    @Test func aJobsNextStatusWaitsForItsRepublishing() async throws {
        let memory = MemoryBroker()
        let broker = OutageBroker(base: memory)
        let gate = Gate()
        let processing = Array("j1 processing".utf8)
        broker.beforeExecute { commands in
            if commands.contains(where: { if case .publish(processing, _) = $0 { true } else { false } }) {
                await gate.enter()
            }
        }
        let unheard = UnheardStatuses(
            broker: broker, channel: "status", logger: Fixture.logger, retry: RetryPolicy(initialDelay: .milliseconds(1)))
        unheard.add([processing], jobId: "j1")
        let payloads = try await memory.subscribe(to: "status") { subscription async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await unheard.run() }
                try await withDeadline("the republish to start", within: .seconds(15)) { await gate.waitForEntry() }
                // The agent finishes the job now: what it takes goes out in front of its done.
                group.addTask {
                    let earlier = await unheard.take(jobId: "j1")
                    for status in earlier + [Array("j1 done".utf8)] { _ = try await memory.publish(status, to: "status") }
                }
                try await withDeadline("take to wait for the republish", within: .seconds(15)) {
                    while unheard.takesWaitingForRepublish == 0 && subscription.bufferedCount == 0 {
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                gate.open()
                var messages = subscription.makeAsyncIterator()
                var payloads: [String] = []
                while payloads.count < 2, let message = try await messages.next() {
                    payloads.append(String(decoding: message.payload, as: UTF8.self))
                }
                group.cancelAll()
                return payloads
            }
        }
        #expect(payloads == ["j1 processing", "j1 done"])
        #expect(unheard.counts.republished == 1)
    }
}
