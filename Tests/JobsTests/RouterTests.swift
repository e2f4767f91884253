import Broker
import Foundation
import Logging
import ServiceLifecycle
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
                try await eventually("both routers to handle every status") {
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
                try await eventually("the router to count every message") {
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
                try await eventually("both routers to handle it") {
                    routers.allSatisfy { $0.stats.jobs["rebalance"]!.handled == 1 }
                }
                #expect(routers.map { $0.stats.jobs["rebalance"]!.routedWithoutRecord }.reduce(0, +) == 1)
                #expect(try await routers[0].events(of: user, after: nil).count == 1)
                #expect(try await broker.get(names.record("1731304200000-gone")) == nil, "nothing invented")
            }
        }
    }

    @Test("replay after an eventId: exactly the later events, then live ones", arguments: TestBackend.all)
    func replayAfterId(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                var jobs: [JobRecord] = []
                for _ in 0..<5 { jobs.append(try await router.jobs().create(payload: [:], for: user)) }
                let logged = try await router.events(of: user, after: nil)
                #expect(logged.count == 5)
                let session = try await router.connect(userId: user, lastEventId: logged[1].eventId!.description, transport: "test")
                defer { session.close() }
                let replayed = try await session.nextEvents(3)
                #expect(replayed.map(\.eventId) == logged[2...].map(\.eventId))
                try await router.jobs().apply(StatusUpdate(jobId: jobs[0].jobId, status: .processing, userId: user))
                let live = try await session.nextEvent()
                #expect(live.name == "rebalance:processing")
                #expect(live.eventId! > logged[4].eventId!)
                #expect(session.bufferedCount == 0)
                // A lastEventId at the end replays nothing; a malformed one is refused.
                let caughtUp = try await router.connect(userId: user, lastEventId: live.eventId!.description, transport: "test")
                #expect(caughtUp.bufferedCount == 0)
                caughtUp.close()
                await #expect(throws: RouterError.invalidLastEventId("abc")) {
                    try await router.connect(userId: user, lastEventId: "abc", transport: "test")
                }
                #expect(router.stats.counts.sessions == 1)
            }
        }
    }

    @Test("a client without lastEventId gets the events routed while the user had no connection anywhere",
        arguments: TestBackend.all)
    func offlineReplay(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            try await withRouters(2, on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                // Online on node 0: receives the creation of job A.
                let first = try await routers[0].connect(userId: user, transport: "test")
                let jobA = try await routers[0].jobs().create(payload: [:], for: user)
                let seen = try await first.nextEvent()
                #expect(seen.data["jobId"] == .string(jobA.jobId))
                first.close()
                // Its watermark is written (coalesced, in the background).
                try await eventually("the delivered watermark") {
                    try await broker.string(routers[0].eventLog.watermarkKey(user)) == seen.eventId!.description
                }
                // Offline: two events.
                try await routers[1].jobs().apply(StatusUpdate(jobId: jobA.jobId, status: .processing, userId: user))
                let jobB = try await routers[1].jobs().create(payload: [:], for: user)
                // Back, on the other node, with no lastEventId: exactly the two missed events.
                let second = try await routers[1].connect(userId: user, transport: "test")
                defer { second.close() }
                let missed = try await second.nextEvents(2)
                #expect(missed.map(\.name) == ["rebalance:processing", "rebalance:created"])
                #expect(missed[1].data["jobId"] == .string(jobB.jobId))
                #expect(second.bufferedCount == 0)
                // A third connection while the second is open: nothing was missed.
                try await eventually("the watermark after replay") {
                    try await broker.string(routers[0].eventLog.watermarkKey(user)) == missed[1].eventId!.description
                }
                let third = try await routers[0].connect(userId: user, transport: "test")
                defer { third.close() }
                #expect(third.bufferedCount == 0)
                // Live events reach both.
                try await routers[0].jobs().apply(StatusUpdate(jobId: jobB.jobId, status: .done, userId: user))
                #expect(try await second.nextEvent().name == "rebalance:done")
                #expect(try await third.nextEvent().name == "rebalance:done")
            }
        }
    }

    @Test("replay races live events: every event once, in order, none lost", arguments: TestBackend.all)
    func replayRace(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let total = 60
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                let first = try await router.jobs().create(payload: [:], for: user)
                let firstId = try #require(try await router.events(of: user, after: nil).first?.eventId)
                _ = first
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for index in 0..<total {
                            try await router.emit("tick", data: ["n": .integer(Int64(index))], toUser: user, durable: true)
                        }
                    }
                    // Connect while the producer runs.
                    let session = try await router.connect(userId: user, lastEventId: firstId.description, transport: "test")
                    defer { session.close() }
                    let events = try await session.nextEvents(total)
                    #expect(events.map { $0.data["n"] } == (0..<total).map { JSONValue.integer(Int64($0)) })
                    let ids = events.map { $0.eventId! }
                    #expect(ids == ids.sorted() && Set(ids).count == total)
                    try await group.waitForAll()
                    #expect(session.bufferedCount == 0)
                }
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
                try await eventually("the malformed message to be counted") {
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

    @Test("shutdown ends run() and closes the node's sessions", arguments: TestBackend.all)
    func shutdown(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let router = Router(broker: broker, configuration: RouterConfiguration(jobTypes: [JobNames(prefix: unique("t"))]))
            let session = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await router.run() }
                try await withDeadline { await router.waitUntilSubscribed() }
                let session = try await router.connect(userId: unique("user"), transport: "test")
                group.cancelAll()
                try await group.waitForAll()
                return session
            }
            #expect(session.closeReason == .shutdown)
            #expect(router.stats.counts.sessions == 0)
            var iterator = session.makeAsyncIterator()
            #expect(await iterator.next() == nil)
        }
    }
}

@Suite("Router sessions on each backend")
struct RouterSessionTests {
    @Test("1,000 connect/disconnect cycles through the router leave no session, room or handler", arguments: TestBackend.all)
    func connectCycles(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [JobNames(prefix: unique("t"))])) {
                routers in
                let router = routers[0]
                _ = try await router.jobs().create(payload: [:], for: user)
                for index in 0..<1_000 {
                    let session = try await router.connect(
                        userId: index % 3 == 0 ? user : "\(user)-\(index % 10)", lastEventId: index % 2 == 0 ? nil : "1",
                        transport: "test")
                    try session.join("room:\(index % 17)")
                    session.close()
                }
                let stats = router.stats
                #expect(stats.counts == SessionCounts(sessions: 0, rooms: 0, users: 0))
                #expect(stats.sessions.opened == 1_000 && stats.sessions.closed == 1_000)
                #expect(stats.subscriptions == 2, "the router's own subscriptions stay as they were")
            }
        }
    }

    @Test("a session that does not read is closed as slow; others of the user go on", arguments: TestBackend.all)
    func slowSession(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [JobNames(prefix: unique("t"))])) {
                routers in
                let router = routers[0]
                let slow = try await router.connect(userId: user, transport: "test", capacity: 3)
                let reader = try await router.connect(userId: user, transport: "test")
                defer { reader.close() }
                for index in 0..<10 {
                    try await router.emit("tick", data: ["n": .integer(Int64(index))], toUser: user)
                }
                let events = try await reader.nextEvents(10)
                #expect(events.map { $0.data["n"] } == (0..<10).map { JSONValue.integer(Int64($0)) })
                #expect(slow.closeReason == .slowConsumer(capacity: 3))
                #expect(router.stats.sessions.slowClosed == 1)
                #expect(router.stats.counts.sessions == 1)
            }
        }
    }
}

@Suite("Router lifecycle")
struct RouterLifecycleTests {
    @Test("graceful shutdown: run() returns, sessions close as .shutdown, updates heard before are applied",
        arguments: TestBackend.all)
    func gracefulShutdown(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let router = Router(broker: broker, configuration: RouterConfiguration(jobTypes: [names]))
            let group = ServiceGroup(configuration: .init(services: [router], logger: Logger(label: "test")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await withDeadline { await router.waitUntilSubscribed() }
                let session = try await router.connect(userId: user, transport: "test")
                let job = try await router.jobs().create(payload: [:], for: user)
                try await GuideAgent(broker: broker, names: names).publish(.processing, for: job)
                _ = try await session.nextEvents(2)  // created, processing: heard and applied
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                #expect(session.closeReason == .shutdown)
                #expect(router.stats.counts.sessions == 0)
                #expect(try await router.jobs().record(job.jobId)?.status == .processing)
            }
        }
    }
}
