import Broker
import BrokerTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Router on each backend")
struct RouterTests {
    @Test("two routers on one backend: each status once in history, each event once in the log and per session",
        arguments: TestBackend.all)
    func twoNodes(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let jobCount = 20
            try await withRouters(2, on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                // One connection of the user on each node.
                let sessions = [
                    try await routers[0].connect(userId: user, transport: "test"),
                    try await routers[1].connect(userId: user, transport: "test"),
                ]
                defer { for session in sessions { session.close() } }
                let agent = GuideAgent(broker: broker, names: names)
                // Created concurrently on both nodes: creators contend for the user's event counter.
                let jobs = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<jobCount {
                        group.addTask {
                            try await routers[index % 2].jobs().create(payload: ["n": .integer(Int64(index))], for: user).jobId
                        }
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                for _ in 0..<jobCount {
                    let job = try await agent.take()
                    try await agent.publish(.processing, for: job)
                    try await agent.publish(.done, for: job)
                }
                let expected = jobCount * 3
                for session in sessions {
                    let events = try await session.nextEvents(expected)
                    let ids = events.map { $0.eventId! }
                    // Each once. (Not asserted: one global id order. Events committed at the same
                    // moment by two nodes reach subscribers in publish order on Redis, but the
                    // memory backend delivers concurrent publishers' messages after releasing its
                    // lock, so their relative order may differ from their ids.)
                    #expect(Set(ids).count == expected, "each event once")
                    // Lifecycle order per job.
                    // Lifecycle order per job, with increasing ids.
                    for job in jobs {
                        let own = events.filter { $0.data["jobId"] == .string(job) }
                        #expect(own.map(\.name) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                        #expect(own.map { $0.eventId! } == own.map { $0.eventId! }.sorted())
                    }
                }
                // Both nodes heard every status; exactly one applied each.
                try await eventually("both routers to handle every status", within: .seconds(10)) {
                    routers.allSatisfy { $0.stats.jobs["rebalance"]!.handled == jobCount * 2 }
                }
                let counters = routers.map { $0.stats.jobs["rebalance"]! }
                #expect(counters.map(\.applied).reduce(0, +) == jobCount * 2)
                #expect(counters.map(\.duplicates).reduce(0, +) == jobCount * 2, "\(counters)")
                for job in jobs {
                    let record = try #require(try await routers[0].jobs().record(job))
                    #expect(record.history.map(\.status) == [.created, .processing, .done])
                }
                let logged = try await routers[1].events(of: user, after: nil)
                #expect(logged.count == min(expected, 100))
                #expect(Set(logged.map { $0.eventId! }).count == logged.count)
                for session in sessions { #expect(session.bufferedCount == 0, "no duplicate waiting") }
            }
        }
    }

    /// A JavaScript agent that cuts a string inside a surrogate pair publishes an unpaired
    /// surrogate escape (well-formed JSON.stringify); the original's JSON.parse took it. The
    /// job's `done` must not be dropped as malformed over one character.
    @Test("a status with an unpaired surrogate or a number in another form is applied and routed", arguments: TestBackend.all)
    func statusFromAJavaScriptAgent(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let owner = unique("owner")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                let session = try await router.connect(userId: owner, transport: "test")
                defer { session.close() }
                let job = try await router.jobs().create(payload: [:], for: owner)
                #expect(try await session.nextEvent().name == "rebalance:created")
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish(.done, for: job, extra: #","result":{"summary":"gain \ud83d","fee":20.0,"tiny":1e-7}"#)

                let done = try await session.nextEvent()
                #expect(done.name == "rebalance:done")
                #expect(done.data["result"]?["summary"] == "gain \u{FFFD}")
                #expect(done.dataJSON.contains(#""fee":20,"#) && done.dataJSON.contains(#""tiny":1e-7"#), "\(done.dataJSON)")
                let record = try #require(try await router.jobs().record(job.jobId))
                #expect(record.status == .done)
                #expect(router.stats.jobs["rebalance"]!.malformed == 0)
            }
        }
    }

    /// A node whose subscriber connection was lost missed the `ws:emit` messages that another
    /// node published meanwhile: its sessions catch up from the event log once it hears again.
    @Test("a node that did not hear ws:emit for a while catches its sessions up", arguments: TestBackend.all)
    func catchUpAfterALoss(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let deaf = DeafBroker(base: broker)
            try await withRouters(onEach: [broker, deaf], configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let session = try await routers[1].connect(userId: user, transport: "test")
                let quiet = try await routers[1].connect(userId: unique("quiet"), transport: "test")
                // Has had no event before the loss: it catches up from where its user stood when it opened.
                let newcomer = unique("newcomer")
                try await routers[0].emit("before", data: [:], toUser: newcomer, durable: true)
                let fresh = try await routers[1].connect(userId: newcomer, transport: "test")
                #expect(try await fresh.nextEvent().name == "before")  // missed by every connection: replayed
                let newest = try await routers[1].connect(userId: newcomer, transport: "test")
                defer {
                    session.close()
                    quiet.close()
                    fresh.close()
                    newest.close()
                }
                let job = try await routers[0].jobs().create(payload: ["amount": 5], for: user)
                #expect(try await session.nextEvent().name == "rebalance:created")

                deaf.goDeaf()
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish(.processing, for: job)
                try await agent.publish(.done, for: job)
                let newcomerJob = try await routers[0].jobs().create(payload: ["amount": 5], for: newcomer)
                // The other node applies both and publishes them on ws:emit, which this node misses.
                try await eventually("the other node to apply both", within: .seconds(10)) {
                    routers[0].stats.jobs["rebalance"]!.applied == 2
                }
                #expect(session.deliveredCount == 1)

                deaf.hearAgain()
                let processing = try await session.nextEvent()
                let done = try await session.nextEvent()
                #expect([processing.name, done.name] == ["rebalance:processing", "rebalance:done"])
                #expect(done.data["jobId"] == .string(job.jobId))
                for newcomerSession in [fresh, newest] {
                    let created = try await newcomerSession.nextEvent()
                    #expect(created.name == "rebalance:created" && created.data["jobId"] == .string(newcomerJob.jobId))
                    #expect(newcomerSession.bufferedCount == 0)
                }
                // A session whose user had no event at all gets nothing.
                #expect(quiet.deliveredCount == 0)
            }
        }
    }

    /// Two nodes; node 1 (on `outage`, over a deaf broker) has a session of `user` that got
    /// the job's `created`, then missed its `processing` and `done` (node 0 applied both). Runs
    /// `body` before node 1 hears again; `body` calls `deaf.hearAgain()`.
    private func withSessionThatMissedAJob(
        on backend: TestBackend,
        _ body: @escaping @Sendable (_ routers: [Router], _ session: Session, _ user: String, _ deaf: DeafBroker, _ outage: OutageBroker) async throws -> Void
    ) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let deaf = DeafBroker(base: broker)
            let outage = OutageBroker(base: deaf)
            try await withRouters(onEach: [broker, outage], configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let session = try await routers[1].connect(userId: user, transport: "test")
                defer { session.close() }
                let job = try await routers[0].jobs().create(payload: ["amount": 5], for: user)
                #expect(try await session.nextEvent().name == "rebalance:created")
                deaf.goDeaf()
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish(.processing, for: job)
                try await agent.publish(.done, for: job)
                try await eventually("the other node to apply both", within: .seconds(10)) {
                    routers[0].stats.jobs["rebalance"]!.applied == 2
                }
                try await body(routers, session, user, deaf, outage)
            }
        }
    }

    /// The missed events are only in the logs: a catch-up that cannot read them must try again,
    /// or the next live event moves the session past them and they are never delivered.
    @Test("a catch-up that cannot read the logs is tried again until it can", arguments: TestBackend.all)
    func catchUpRetriedAfterAFailedRead(backend: TestBackend) async throws {
        try await withSessionThatMissedAJob(on: backend) { routers, session, user, deaf, outage in
            outage.failOnce { $0.contains(where: \.readsAList) }
            deaf.hearAgain()
            try await routers[0].emit("later", data: [:], toUser: user, durable: true)
            // Whether the live event came before or after the retry, nothing is missing.
            let received = try await session.nextEvents(3).map(\.name)
            #expect(Set(received) == ["rebalance:processing", "rebalance:done", "later"], "\(received)")
        }
    }

    /// While a session catches up, a live event arriving meanwhile waits for the logged ones:
    /// the client sees `processing`, `done`, then the newer event, never the newer one first.
    @Test("a catch-up hands over the missed events before a live one that arrives meanwhile", arguments: TestBackend.all)
    func catchUpKeepsIdOrder(backend: TestBackend) async throws {
        try await withSessionThatMissedAJob(on: backend) { routers, session, user, deaf, outage in
            // The catch-up's read of the logs waits until the live event has been handed over.
            let latch = Latch()
            let reading = Atomic(false)
            outage.beforeExecute { commands in
                guard commands.contains(where: \.readsAList) else { return }
                reading.store(true, ordering: .sequentiallyConsistent)
                await latch.wait()
            }
            deaf.hearAgain()
            try await eventually("the catch-up to read the logs", within: .seconds(10)) {
                reading.load(ordering: .sequentiallyConsistent)
            }
            let handed = routers[1].registry.counters.eventsDelivered
            try await routers[0].emit("later", data: [:], toUser: user, durable: true)
            try await eventually("the live event to reach the session", within: .seconds(10)) {
                routers[1].registry.counters.eventsDelivered > handed
            }
            latch.open()
            #expect(try await session.nextEvents(3).map(\.name) == ["rebalance:processing", "rebalance:done", "later"])
        }
    }

    @Test(
        "a status heard while the broker is away is applied once it answers, in order with the next one",
        arguments: TestBackend.all)
    func statusAppliedAfterTheBrokerReturns(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let outage = OutageBroker(base: broker)
            try await withRouters(on: outage, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                let session = try await router.connect(userId: user, transport: "test")
                defer { session.close() }
                let job = try await router.jobs().create(payload: ["amount": 5], for: user)
                #expect(try await session.nextEvent().name == "rebalance:created")
                // The subscription stays up (as when only the command connections drop); every
                // call the router makes fails meanwhile.
                outage.setDown(true)
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish(.processing, for: job)
                try await agent.publish(.done, for: job)
                try await eventually("the router to hear both", within: .seconds(10)) {
                    router.stats.jobs["rebalance"]!.statusReceived == 2
                }
                try await Task.sleep(for: .milliseconds(200))  // a few failed tries
                outage.setDown(false)
                #expect(try await session.nextEvents(2).map(\.name) == ["rebalance:processing", "rebalance:done"])
                let record = try #require(try await router.jobs().record(job.jobId))
                #expect(record.status == .done)
                #expect(record.history.map(\.status) == [.created, .processing, .done])
                #expect(router.stats.jobs["rebalance"]!.failed == 0)
            }
        }
    }

    @Test("malformed and wrong-owner updates are dropped while good ones flow", arguments: TestBackend.all)
    func dropsBadUpdates(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let owner = unique("owner")
            let intruder = unique("intruder")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                let ownerSession = try await router.connect(userId: owner, transport: "test")
                let intruderSession = try await router.connect(userId: intruder, transport: "test")
                defer {
                    ownerSession.close()
                    intruderSession.close()
                }
                let job = try await router.jobs().create(payload: [:], for: owner)
                #expect(try await ownerSession.nextEvent().name == "rebalance:created")
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish("not json at all")
                try await agent.publish("[1,2,3]")
                try await agent.publish(#"{"status":"processing","userId":"\#(owner)"}"#)
                try await agent.publish(#"{"jobId":"\#(job.jobId)","status":"processing"}"#)
                try await agent.publish(#"{"jobId":"\#(job.jobId)","status":"exploded","userId":"\#(owner)"}"#)
                try await agent.publish(#"{"jobId":"\#(job.jobId)","status":"done","userId":"\#(intruder)","result":{"stolen":true}}"#)
                try await agent.publish(.processing, for: job, extra: #","progress":50"#)
                try await agent.publish(.done, for: job)

                let processing = try await ownerSession.nextEvent()
                #expect(processing.name == "rebalance:processing")
                #expect(processing.data["progress"] == 50, "unknown fields pass through")
                #expect(try await ownerSession.nextEvent().name == "rebalance:done")
                try await eventually("the router to count every message", within: .seconds(10)) {
                    router.stats.jobs["rebalance"]!.handled == 8
                }
                let counters = router.stats.jobs["rebalance"]!
                #expect(counters.malformed == 2)
                #expect(counters.missingField == 2)
                #expect(counters.unknownStatus == 1)
                #expect(counters.wrongOwner == 1)
                #expect(counters.applied == 2)
                let record = try #require(try await router.jobs().record(job.jobId))
                #expect(record.result == nil || record.result == .null)
                #expect(record.history.map(\.status) == [.created, .processing, .done])
                // The intruder received nothing.
                #expect(intruderSession.deliveredCount == 0)
            }
        }
    }

    @Test("a status for a job without a record reaches the named user once, even with two nodes", arguments: TestBackend.all)
    func statusWithoutRecord(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            try await withRouters(2, on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let session = try await routers[0].connect(userId: user, transport: "test")
                defer { session.close() }
                let agent = GuideAgent(broker: broker, names: names)
                try await agent.publish(#"{"jobId":"1731304200000-gone","status":"done","userId":"\#(user)"}"#)
                let event = try await session.nextEvent()
                #expect(event.name == "rebalance:done")
                try await eventually("both routers to handle it", within: .seconds(10)) {
                    routers.allSatisfy { $0.stats.jobs["rebalance"]!.handled == 1 }
                }
                #expect(routers.map { $0.stats.jobs["rebalance"]!.routedWithoutRecord }.reduce(0, +) == 1)
                #expect(try await routers[0].events(of: user, after: nil).count == 1)
                #expect(try await broker.get(names.record("1731304200000-gone")) == nil, "nothing invented")
            }
        }
    }


    @Test("ws:emit from another service reaches a user's and a room's sessions; bad messages are counted",
        arguments: TestBackend.all)
    func emitChannel(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let user = unique("user")
            let other = unique("other")
            let room = "room:\(unique("lobby"))"
            try await withRouters(2, on: broker, configuration: RouterConfiguration(jobTypes: [JobNames(prefix: unique("t"))])) {
                routers in
                let mine = try await routers[0].connect(userId: user, transport: "test")
                let theirs = try await routers[1].connect(userId: other, transport: "test")
                defer {
                    mine.close()
                    theirs.close()
                }
                try mine.join(room)
                try theirs.join(room)
                try await broker.publish(#"{"userId":"\#(user)","event":"notification","data":{"text":"hi"}}"#, to: "ws:emit")
                let note = try await mine.nextEvent()
                #expect(note.name == "notification")
                #expect(note.data["text"] == "hi")
                #expect(note.eventId == nil)
                try await broker.publish("garbage", to: "ws:emit")
                try await broker.publish(#"{"room":"\#(room)","event":"chat-message","data":{"message":"hello"}}"#, to: "ws:emit")
                #expect(try await mine.nextEvent().name == "chat-message")
                #expect(try await theirs.nextEvent().name == "chat-message")
                // The Swift API for in-process callers, across nodes.
                try await routers[1].emit("notification", data: ["n": 2], toUser: user)
                #expect(try await mine.nextEvent().data["n"] == 2)
                try await routers[0].emit("announcement", data: [:], toRoom: room)
                #expect(try await theirs.nextEvent().name == "announcement")
                try await eventually("the malformed message to be counted", within: .seconds(10)) {
                    routers.allSatisfy { $0.stats.emitMalformed == 1 }
                }
                #expect(theirs.deliveredCount == 2, "the other user got only room events")
            }
        }
    }

    @Test("several job types in one process, with their own prefixes", arguments: TestBackend.all)
    func severalJobTypes(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let prefix = unique("t")
            let rebalance = JobNames(prefix: prefix, type: "rebalance")
            let withdraw = JobNames(prefix: prefix, type: "withdraw")
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [rebalance, withdraw])) { routers in
                let router = routers[0]
                let session = try await router.connect(userId: user, transport: "test")
                defer { session.close() }
                let a = try await router.jobs("rebalance").create(payload: [:], for: user)
                let b = try await router.jobs("withdraw").create(payload: [:], for: user)
                #expect(try await broker.length(of: "\(prefix):rebalance:jobs") == 1)
                #expect(try await broker.length(of: "\(prefix):withdraw:jobs") == 1)
                try await GuideAgent(broker: broker, names: withdraw).publish(.done, for: b)
                try await GuideAgent(broker: broker, names: rebalance).publish(.processing, for: a)
                let events = try await session.nextEvents(4)
                #expect(events.map(\.name) == ["rebalance:created", "withdraw:created", "withdraw:done", "rebalance:processing"])
                #expect(try await router.canFollow(jobId: b.jobId, userId: user))
                #expect(try await !router.canFollow(jobId: b.jobId, userId: "someone-else"))
                #expect(throws: JobError.unknownJobType("deposit")) { try router.jobs("deposit") }
                #expect(router.stats.subscriptions == 3)
            }
        }
    }
}
