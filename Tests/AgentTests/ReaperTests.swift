import Broker
import BrokerTesting
import Foundation
import MemoryBackend
import Testing

@Suite("Reaper: lapsed jobs go back to the queue exactly once")
struct ReaperTests {
    /// A job taken by an agent that then died: moved to processing (with a lease that lapses,
    /// when `lease` is given) and never acknowledged.
    func takeAndDie(_ broker: any Broker, _ names: JobNames, lease: Duration?) async throws -> String {
        let moved = try await broker.blockingMove(
            from: names.queue, .tail, to: names.processing, .head, timeout: .seconds(5))
        let id = String(decoding: try #require(moved), as: UTF8.self)
        if let lease {
            try await broker.set(names.lease(id), to: "dead-agent", expiry: .after(lease))
        }
        return id
    }

    func reaper(_ broker: any Broker, _ names: JobNames, grace: Duration = .zero, maxLapses: Int? = 5) -> Reaper {
        var configuration = AgentConfiguration(names: names)
        configuration.takeGrace = grace
        configuration.maxLapses = maxLapses
        return Reaper(broker: broker, configuration: configuration, logger: Fixture.logger)
    }

    @Test("a job whose agent died is reaped after the visibility timeout and completed by a live agent",
          arguments: AgentBackend.all, [Duration?.none, .milliseconds(100)])
    func deadAgentsJobCompletes(backend: AgentBackend, deadLease: Duration?) async throws {
        try await backend.withBroker { broker, names in
            try await Fixture.enqueue(broker, names: names, id: "orphan", user: "owner", payload: ["amount": 10])
            let id = try await takeAndDie(broker, names, lease: deadLease)
            #expect(id == "orphan")
            #expect(try await broker.length(of: names.queue) == 0)

            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(),
                configuration: fastConfiguration(names, visibilityTimeout: .milliseconds(200)), logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await subscription.statuses("the orphan done") { $0.contains { $0.status == .done } }
            }
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(statuses.allSatisfy { $0.jobId == "orphan" && $0.userId == "owner" })
            #expect(try await broker.length(of: names.processing) == 0)
            #expect(try await broker.length(of: names.queue) == 0)
        }
    }

    @Test("a taken id without a lease waits out the grace; a held lease is never reaped", arguments: AgentBackend.all)
    func graceAndLiveLease(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await Fixture.enqueue(broker, names: names, id: "fresh", payload: ["amount": 1])
            try await Fixture.enqueue(broker, names: names, id: "held", payload: ["amount": 1])
            _ = try await takeAndDie(broker, names, lease: nil)  // "fresh": taken, lease not yet set
            _ = try await takeAndDie(broker, names, lease: .seconds(600))  // "held": a live agent's lease
            var reaper = reaper(broker, names, grace: .seconds(5))
            let start = ContinuousClock.now
            #expect(try await reaper.scan(now: start) == 0)
            #expect(try await reaper.scan(now: start + .seconds(4)) == 0)
            #expect(try await reaper.scan(now: start + .seconds(6)) == 1)
            #expect(try await reaper.scan(now: start + .seconds(60)) == 0)
            #expect(try await broker.range(of: names.queue).map { String(decoding: $0, as: UTF8.self) } == ["fresh"])
            #expect(try await broker.range(of: names.processing).map { String(decoding: $0, as: UTF8.self) } == ["held"])
        }
    }

    @Test("two reapers at once put a lapsed job back once", arguments: AgentBackend.all)
    func concurrentReapers(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            for round in 0..<50 {
                try await Fixture.enqueue(broker, names: names, id: "job-\(round)", payload: ["amount": 1])
                _ = try await takeAndDie(broker, names, lease: nil)
                var first = reaper(broker, names)
                var second = reaper(broker, names)
                async let a = first.scan()
                async let b = second.scan()
                let reaped = try await a + b
                #expect(reaped == 1)
                #expect(try await broker.length(of: names.processing) == 0)
                #expect(try await broker.range(of: names.queue) == [Array("job-\(round)".utf8)])
                _ = try await broker.pop(from: .tail, of: names.queue)
            }
        }
    }

    @Test("an acknowledged job is never put back, however the acknowledgement and reapers interleave",
          arguments: AgentBackend.all)
    func ackRacesReapers(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let reaper = reaper(broker, names)
            for round in 0..<100 {
                let id = "job-\(round)"
                try await Fixture.enqueue(broker, names: names, id: id, payload: ["amount": 1])
                _ = try await takeAndDie(broker, names, lease: nil)
                let value = Array(id.utf8)
                async let first = reaper.reap(id) != .none
                async let ack = broker.execute(
                    [.remove(value: value, count: 1, queue: names.processing), .delete(keys: [names.lease(id)])],
                    atomically: false)  // as the agent acknowledges: a pipeline
                async let second = reaper.reap(id) != .none
                let putBack = [try await first, try await second].filter { $0 }.count
                let acknowledged = try await ack[0].integer() == 1
                #expect(putBack <= 1)
                #expect(try await broker.length(of: names.processing) == 0)
                let queued = try await broker.length(of: names.queue)
                if acknowledged {
                    #expect(putBack == 0 && queued == 0)
                } else {
                    #expect(putBack == 1 && queued == 1)
                }
                _ = try await broker.delete(names.queue)
            }
        }
    }

    @Test("a job running longer than the visibility timeout keeps its lease and runs once", arguments: AgentBackend.all)
    func leaseRenewal(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            let agent = Agent(
                broker: broker, handler: DemoRebalanceHandler(),
                // 3 s, not 1 s: a 1 s timeout gives leases of 0.5 s, which a stall of a third of a
                // second in a full parallel run let lapse (the job then ran twice). The job still
                // outlives the timeout, and its lease (1.5 s) several times over.
                configuration: fastConfiguration(names, concurrency: 2, visibilityTimeout: .seconds(3)),
                logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await Fixture.enqueue(broker, names: names, id: "long", payload: ["amount": 1, "delayMs": 4000])
                return try await subscription.statuses("the long job done") { $0.contains { $0.status == .done } }
            }
            #expect(statuses.map(\.status) == [.processing, .done])
            #expect(agent.statistics.taken == 1)
        }
    }

    @Test("a job that stops every agent running it goes back max-lapses times, then fails with its runs as attempts",
          arguments: AgentBackend.all)
    func lapseLimit(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await broker.subscribe(to: names.statusChannel) { subscription in
                try await Fixture.enqueue(broker, names: names, id: "poison", user: "owner", payload: ["amount": 1])
                let reaper = reaper(broker, names, maxLapses: 2)
                for lapse in 1...2 {
                    _ = try await takeAndDie(broker, names, lease: nil)
                    #expect(try await reaper.reap("poison") == .putBack(lapses: lapse))
                    #expect(try await broker.range(of: names.queue) == [Array("poison".utf8)])
                    #expect(try await broker.get(names.lapses("poison")) == Array("\(lapse)".utf8))
                    // The count lives as long as a record, not forever.
                    guard case .expiresIn(let ttl) = try await broker.timeToLive(of: names.lapses("poison")) else {
                        Issue.record("the lapse count has no TTL")
                        return
                    }
                    #expect(ttl > .seconds(86_000) && ttl <= JobNames.recordLifetime)
                }
                _ = try await takeAndDie(broker, names, lease: nil)
                #expect(try await reaper.reap("poison") == .failed(runs: 3))
                #expect(try await reaper.reap("poison") == Reaper.Outcome.none)  // once only
                try await expectNothingQueuedOrTaken(broker, names)
                #expect(try await broker.get(names.lapses("poison")) == nil)
                let statuses = try await subscription.statuses("the poison job's error") { !$0.isEmpty }
                #expect(statuses.count == 1)
                let failure = try #require(statuses.first)
                #expect(failure.jobId == "poison" && failure.userId == "owner" && failure.status == .error)
                #expect(failure.attempts == 3)
                #expect(failure.error?.contains("3 times") == true)
                #expect(failure.timestamp != nil)
            }
        }
    }

    @Test("without a lapse limit a lapsed job always goes back; a limit of 0 fails it at its first lapse",
          arguments: AgentBackend.all)
    func unlimitedAndZeroLapses(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await Fixture.enqueue(broker, names: names, id: "stubborn", payload: ["amount": 1])
            let unlimited = reaper(broker, names, maxLapses: nil)
            for lapse in 1...8 {
                _ = try await takeAndDie(broker, names, lease: nil)
                #expect(try await unlimited.reap("stubborn") == .putBack(lapses: lapse))
            }
            _ = try await takeAndDie(broker, names, lease: nil)
            #expect(try await reaper(broker, names, maxLapses: 0).reap("stubborn") == .failed(runs: 9))
            try await expectNothingQueuedOrTaken(broker, names)
        }
    }

    @Test("a lapsed job whose record is gone still leaves the processing list at the limit, with no status",
          arguments: AgentBackend.all)
    func lapseLimitWithoutRecord(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await broker.subscribe(to: names.statusChannel) { subscription in
                try await broker.push("recordless", to: .head, of: names.queue)
                _ = try await takeAndDie(broker, names, lease: nil)
                #expect(try await reaper(broker, names, maxLapses: 0).reap("recordless") == .failed(runs: 1))
                try await expectNothingQueuedOrTaken(broker, names)
                // Published after the reap committed: it comes first only if the reap published nothing.
                try await broker.publish(Array(#"{"marker":true}"#.utf8), to: names.statusChannel)
                let first = try await withDeadline("the marker", within: .seconds(10)) {
                    var iterator = subscription.makeAsyncIterator()
                    return try await iterator.next()
                }
                #expect(first?.payload == Array(#"{"marker":true}"#.utf8))
            }
        }
    }

    func expectNothingQueuedOrTaken(_ broker: any Broker, _ names: JobNames) async throws {
        #expect(try await broker.length(of: names.queue) == 0)
        #expect(try await broker.length(of: names.processing) == 0)
    }

    @Test("the agent's own reaper fails an orphaned job past its lapse limit, and the owner hears the error",
          arguments: AgentBackend.all)
    func agentAppliesLapseLimit(backend: AgentBackend) async throws {
        try await backend.withBroker { broker, names in
            try await Fixture.enqueue(broker, names: names, id: "orphan", user: "owner", payload: ["amount": 10])
            _ = try await takeAndDie(broker, names, lease: nil)
            var configuration = fastConfiguration(names, visibilityTimeout: .milliseconds(200))
            configuration.maxLapses = 0
            let agent = Agent(broker: broker, handler: DemoRebalanceHandler(), configuration: configuration, logger: Fixture.logger)
            let statuses = try await Fixture.withAgent(agent, on: broker) { subscription, _ in
                try await subscription.statuses("the orphan's error") { $0.contains { $0.status == .error } }
            }
            #expect(statuses.map(\.status) == [.error])
            #expect(statuses.first?.attempts == 1 && statuses.first?.userId == "owner")
            #expect(agent.statistics.taken == 0)
            try await expectNothingQueuedOrTaken(broker, names)
        }
    }
}
