@testable import Broker
import BrokerTesting
import Foundation
import MemoryBackend
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Agent runtime")
struct AgentTests {
    @Test("a queued job is taken, processing then done are published with userId and the demo result",
          arguments: AgentBackend.all)
    func fullPath(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(
                    broker, names: names, id: "1731304200000-a7f3e2k", user: "GXHEX", payload: ["amount": 1000])
                return try await subscription.statuses("done") { $0.contains { $0.status.isFinal } }
            }
            try #require(statuses.count == 2)
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(statuses.allSatisfy { $0.jobId == "1731304200000-a7f3e2k" && $0.userId == "GXHEX" && $0.timestamp != nil })
            let result = try #require(statuses[1].result)
            #expect(result["success"] == true)
            #expect(result["originalAmount"] == 1000)
            #expect(result["fee"]?.doubleValue == 20)
            #expect(result["remainingAmount"]?.doubleValue == 980)
            #expect(result["processedAt"]?.stringValue?.hasSuffix("Z") == true)
            // Acknowledged: nothing left taken, no lease left behind.
            #expect(try await broker.length(of: names.processing) == 0)
            #expect(try await broker.get(names.lease("1731304200000-a7f3e2k")) == nil)
            #expect(agent.statistics.done == 1)
        }
    }

    @Test("jobs are taken oldest first", arguments: AgentBackend.all)
    func fifo(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            var ids: [String] = []
            for n in 0..<8 {
                ids.append(try await Fixture.enqueue(broker, names: names, id: "job-\(n)", payload: ["amount": .integer(Int64(n + 1))]))
            }
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await subscription.statuses("8 done") { $0.filter { $0.status == .done }.count == 8 }
            }
            #expect(statuses.filter { $0.status == .processing }.map(\.jobId) == ids)
            #expect(statuses.filter { $0.status == .done }.map(\.jobId) == ids)
        }
    }

    @Test("an invalid amount is an error at once, without retries", arguments: AgentBackend.all, [
        JSONValue.object(["amount": 0]), ["amount": -5], ["amount": "abc"], ["priority": "high"],
    ])
    func invalidAmount(backend: AgentBackend, payload: JSONValue) async throws {
        try await backend.withBroker { broker, names in
            let handler = CountingHandler()
            let agent = Agent(
                broker: broker, handler: handler, configuration: fastConfiguration(names, maxAttempts: 5),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, id: "bad", user: "u", payload: payload)
                return try await subscription.statuses("error") { $0.contains { $0.status.isFinal } }
            }
            let final = try #require(statuses.last)
            #expect(final.status == .error)
            #expect(final.error == "Invalid amount")
            #expect(final.attempts == 1)
            #expect(final.userId == "u")
            #expect(handler.calls.withLock { $0 } == 1)
            #expect(agent.statistics.retries == 0)
            #expect(try await broker.length(of: names.processing) == 0)
        }
    }

    /// The step a blip hits: the start (the lease and the record read, in one pipeline), or the
    /// `processing` status (the first PUBLISH).
    enum BlipAt: String, CaseIterable, Sendable { case start, processing }

    @Test(
        "a broker blip when a job starts or reports processing is tried again: nothing left to the reaper, no status lost",
        arguments: AgentBackend.all, BlipAt.allCases)
    func stepRetriedAfterABlip(backend: AgentBackend, blip: BlipAt) async throws {
        try await backend.withBroker { broker, names in
            let outage = OutageBroker(base: broker)
            outage.failOnce { commands in
                commands.contains {
                    switch ($0, blip) {
                    case (.get, .start), (.publish, .processing): true
                    default: false
                    }
                }
            }
            let agent = Agent(
                broker: outage, handler: DemoRebalanceHandler(),
                configuration: fastConfiguration(names, visibilityTimeout: .seconds(120)), logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, id: "blip", user: "u", payload: ["amount": 100])
                return try await subscription.statuses("done") { $0.contains { $0.status == .done } }
            }
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(agent.statistics.abandoned == 0)
            #expect(try await broker.length(of: names.processing) == 0)
        }
    }

    @Test("a transient failure is retried, then the job succeeds", arguments: AgentBackend.all)
    func retriedThenDone(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let handler = FlakyHandler(failures: 2)
            let agent = Agent(
                broker: broker, handler: handler, configuration: fastConfiguration(names, maxAttempts: 3),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, payload: ["amount": 50])
                return try await subscription.statuses("done") { $0.contains { $0.status.isFinal } }
            }
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(statuses.last?.attempts == 3)
            #expect(statuses.last?.result?["fee"]?.doubleValue == 1)
            #expect(handler.calls.withLock { $0 } == 3)
            #expect(agent.statistics.retries == 2)
        }
    }

    @Test("when retries run out the job ends in error with its attempts", arguments: AgentBackend.all)
    func retriesExhausted(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let handler = FlakyHandler(failures: .max)
            let agent = Agent(
                broker: broker, handler: handler, configuration: fastConfiguration(names, maxAttempts: 4),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, user: "owner", payload: ["amount": 50])
                return try await subscription.statuses("error") { $0.contains { $0.status.isFinal } }
            }
            let final = try #require(statuses.last)
            #expect(final.status == .error)
            #expect(final.attempts == 4)
            #expect(final.error == "upstream unavailable (call 4)")
            #expect(final.userId == "owner")
            #expect(handler.calls.withLock { $0 } == 4)
            #expect(try await broker.length(of: names.processing) == 0)
        }
    }

    @Test("an id whose record is gone is acknowledged and skipped", arguments: AgentBackend.all)
    func missingRecord(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await broker.push("ghost", to: .head, of: names.queue)
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                // Taken after the ghost (FIFO, one worker): once it is done, the ghost was handled.
                try await Fixture.enqueue(broker, names: names, id: "real", payload: ["amount": 1])
                return try await subscription.statuses("done") { $0.contains { $0.status.isFinal } }
            }
            #expect(statuses.allSatisfy { $0.jobId == "real" })
            #expect(agent.statistics.skipped == 1)
            #expect(try await broker.length(of: names.processing) == 0)
            #expect(try await broker.length(of: names.queue) == 0)
        }
    }

    /// A third-party producer's record with members of other types than SPEC §1 says still
    /// runs: the agent needs only its owner and payload, as the original guide's agent does.
    @Test("a record with odd members but an owner runs", arguments: AgentBackend.all)
    func oddRecordRuns(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let record = #"""
                {"jobId":null,"status":"queued","user":{"publicKey":"odd-owner"},"payload":{"amount":250},
                 "createdAt":1731304200000,"attempts":"0","error":{"code":1},"history":[{"status":"created"}]}
                """#
            _ = try await broker.execute(
                [
                    .set(key: names.record("odd-1"), value: Array(record.utf8), expiry: .after(.seconds(60)), condition: .always),
                    .push([Array("odd-1".utf8)], end: .head, queue: names.queue),
                ], atomically: true)
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(), configuration: fastConfiguration(names), logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await subscription.statuses("done") { $0.contains { $0.status.isFinal } }
            }
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(statuses.allSatisfy { $0.jobId == "odd-1" && $0.userId == "odd-owner" })
            #expect(statuses.last?.result?["fee"]?.doubleValue == 5)
            #expect(agent.statistics.skipped == 0)
        }
    }

    /// Gateways refuse statuses whose job or user id is not usable: such a job is dropped
    /// before any work, and the jobs behind it run.
    @Test("a job whose id or owner no gateway accepts is dropped unrun", arguments: AgentBackend.all)
    func unusableIdsDropped(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await Fixture.enqueue(broker, names: names, id: "has space", payload: ["amount": 1])
            try await Fixture.enqueue(broker, names: names, id: "bad-owner", user: "with space", payload: ["amount": 1])
            let handler = CountingHandler()
            let agent = Agent(broker: broker, handler: handler, configuration: fastConfiguration(names), logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, id: "fine", payload: ["amount": 1])
                return try await subscription.statuses("done") { $0.contains { $0.status.isFinal } }
            }
            #expect(statuses.allSatisfy { $0.jobId == "fine" })
            #expect(handler.calls.withLock { $0 } == 1)
            #expect(agent.statistics.skipped == 2)
            #expect(try await broker.length(of: names.processing) == 0)
        }
    }

    /// An idle agent keeps only ``AgentConfiguration/waitingTakes`` takes waiting on the
    /// queue (on Redis, one connection each); the other workers wait for a turn, and all run
    /// jobs once they come.
    @Test("only a few workers wait on an empty queue", arguments: AgentBackend.all)
    func waitingTakesAreBounded(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            var configuration = fastConfiguration(names, concurrency: 8)
            configuration.waitingTakes = 2
            let handler = CountingHandler()
            let agent = Agent(broker: broker, handler: handler, configuration: configuration, logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await withDeadline("the idle workers to line up", within: .seconds(15)) {
                    while agent.takeTurns.waitingCount != 6 { try await Task.sleep(for: .milliseconds(5)) }
                }
                for n in 0..<20 { try await Fixture.enqueue(broker, names: names, id: "turn-\(n)", payload: ["amount": 1]) }
                return try await subscription.statuses("20 jobs done") { $0.filter { $0.status == .done }.count == 20 }
            }
            #expect(Set(statuses.filter { $0.status == .done }.map(\.jobId)).count == 20)
            #expect(handler.calls.withLock { $0 } == 20)
        }
    }

    /// An outage longer than a blip while a job finishes delays its acknowledgement; it does
    /// not throw the finished work away to run the job again.
    @Test("an acknowledgement outlasts an outage of a few seconds")
    func acknowledgementOutlastsOutage() async throws {
        let memory = MemoryBroker()
        let broker = OutageBroker(base: memory)
        let names = JobNames(prefix: "ack-outage", type: "rebalance")
        let gate = Gate()
        let handler = GatedHandler(gate: gate)
        let agent = Agent(broker: broker, handler: handler, configuration: fastConfiguration(names), logger: Fixture.logger)
        try await Fixture.enqueue(memory, names: names, id: "slow", payload: ["amount": 1])
        let statuses = try await Fixture.withAgent(agent, on: memory) { subscription, _ in
            try await withDeadline("the job to start", within: .seconds(15)) { await gate.waitForEntry() }
            broker.setDown(true)
            gate.open()
            // Longer than the five tries over about 1.5 s the acknowledgement used to get.
            try await Task.sleep(for: .seconds(2.5))
            broker.setDown(false)
            return try await subscription.statuses("done") { $0.contains { $0.status == .done } }
        }
        #expect(statuses.filter { $0.status == .done }.map(\.jobId) == ["slow"])
        #expect(handler.calls.withLock { $0 } == 1)
        #expect(agent.statistics.done == 1)
        #expect(try await memory.length(of: names.processing) == 0)
    }
}
