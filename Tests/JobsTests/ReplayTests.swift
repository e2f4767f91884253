@testable import Broker
import BrokerTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Replay on each backend")
struct ReplayTests {
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
                // A lastEventId at the end replays nothing.
                let caughtUp = try await router.connect(userId: user, lastEventId: live.eventId!.description, transport: "test")
                #expect(caughtUp.bufferedCount == 0)
                #expect(caughtUp.ignoredLastEventId == nil)
                caughtUp.close()
                #expect(router.stats.counts.sessions == 1)
            }
        }
    }

    @Test(
        "a lastEventId this system did not issue (malformed, or above the user's sequence) is ignored: the client gets what a new connection gets, then every live event",
        arguments: TestBackend.all)
    func unissuedLastEventId(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                // Two events while the user has no connection anywhere.
                let job = try await router.jobs().create(payload: [:], for: user)
                try await router.jobs().apply(StatusUpdate(jobId: job.jobId, status: .processing, userId: user))
                let logged = try await router.events(of: user, after: nil)
                #expect(logged.count == 2)
                let last = try #require(logged.last?.eventId)
                let future = EventID(last.value + 1_000_000).description
                var missed = logged
                for presented in ["abc", future, "9223372036854775807"] {
                    let session = try await router.connect(userId: user, lastEventId: presented, transport: "test")
                    #expect(session.ignoredLastEventId == presented)
                    // Replayed as for a connection that presented no id: the events no connection received.
                    #expect(try await session.nextEvents(2).map(\.eventId) == missed.map(\.eventId))
                    // Live events numbered below the presented id still arrive (a floor would hide them).
                    try await router.emit("tick", data: [:], toUser: user, durable: true)
                    #expect(try await session.nextEvent().name == "tick")
                    session.close()
                    // Delivered: a connection without an id now has nothing to catch up.
                    let fresh = try await router.connect(userId: user, transport: "test")
                    #expect(fresh.bufferedCount == 0)
                    fresh.close()
                    // Missed by everyone, for the next round.
                    try await router.emit("offline", data: [:], toUser: user, durable: true)
                    try await router.emit("offline", data: [:], toUser: user, durable: true)
                    missed = Array(try await router.events(of: user, after: nil).suffix(2))
                }
                // The sequence expired (or never existed): an old id replays the log after it, with no floor.
                let stranger = unique("user")
                let session = try await router.connect(userId: stranger, lastEventId: "12345", transport: "test")
                #expect(session.ignoredLastEventId == nil)
                try await router.emit("tick", data: [:], toUser: stranger, durable: true)
                #expect(try await session.nextEvent().name == "tick")
                session.close()
            }
        }
    }

    /// An event that reaches a session still reading its replay is held for after the
    /// replayed ones. It counts as delivered (the user's watermark) only once handed over: a
    /// client that left mid-replay never got it, so the user's next connection must.
    @Test("an event held by a session that closes before its replay ends reaches the user's next connection",
        arguments: TestBackend.all)
    func eventHeldByASessionThatLeavesMidReplay(backend: TestBackend) async throws {
        try await withRouterWhoseReplaysWait(on: backend) { router, user, replaysWait in
            let gone = try await Self.connect(user, to: router, replaysWait: replaysWait, whileEmitting: "held") {
                router.registry.closeAll(reason: .closed)  // the client leaves before its replay ends
            }
            #expect(gone.isClosed && gone.deliveredCount == 0)
            try await router.writeWatermarks()
            let next = try await router.connect(userId: user, transport: "test")
            defer { next.close() }
            #expect(try await next.nextEvent().name == "held", "nobody received it: it is replayed")
        }
    }

    /// Held live events go out after the replayed ones, in id order, each once.
    @Test("live events arriving during a replay follow the replayed ones in id order", arguments: TestBackend.all)
    func eventsHeldDuringReplayKeepIdOrder(backend: TestBackend) async throws {
        try await withRouterWhoseReplaysWait(on: backend) { router, user, replaysWait in
            try await router.emit("missed", data: [:], toUser: user, durable: true)
            let session = try await Self.connect(user, to: router, replaysWait: replaysWait, whileEmitting: "live")
            defer { session.close() }
            let events = try await session.nextEvents(2)
            #expect(events.map(\.name) == ["missed", "live"])
            #expect(events[0].eventId! < events[1].eventId!)
            #expect(session.bufferedCount == 0)
        }
    }

    /// Runs `body` with a router whose replays (reads of a log) wait on the latch it is given,
    /// once the latch is armed (`arm()`); open stays open.
    private func withRouterWhoseReplaysWait(
        on backend: TestBackend, _ body: @escaping @Sendable (Router, String, ReplayLatch) async throws -> Void
    ) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let outage = OutageBroker(base: broker)
            let latch = ReplayLatch()
            outage.beforeExecute { commands in
                if latch.isArmed, commands.contains(where: \.readsAList) { await latch.latch.wait() }
            }
            try await withRouters(on: outage, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                try await body(routers[0], unique("user"), latch)
            }
        }
    }

    /// Connects `user` while an event `name` arrives: the replay's read waits until the event has
    /// reached the opening session; `meanwhile` runs then. Returns the session once its replay
    /// has ended.
    private static func connect(
        _ user: String, to router: Router, replaysWait: ReplayLatch, whileEmitting name: String,
        meanwhile: @Sendable () -> Void = {}
    ) async throws -> Session {
        replaysWait.arm()
        let connecting = Task { try await router.connect(userId: user, transport: "test") }
        try await eventually("the session to open") { router.stats.counts.sessions == 1 }
        let handed = router.registry.counters.eventsDelivered
        try await router.emit(name, data: [:], toUser: user, durable: true)
        try await eventually("the event to reach the session") { router.registry.counters.eventsDelivered > handed }
        meanwhile()
        replaysWait.latch.open()
        return try await connecting.value
    }

    @Test(
        "while the broker is away a session opens anyway and gets its replay once the broker answers, then live events; without a running router, connect throws",
        arguments: TestBackend.all)
    func replayDeferredWhileTheBrokerIsAway(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let outage = OutageBroker(base: broker)
            try await withRouters(on: outage, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                // Missed by everyone: replayed to a connection without an id, and after the first.
                try await router.emit("missed", data: ["n": 1], toUser: user, durable: true)
                try await router.emit("missed", data: ["n": 2], toUser: user, durable: true)
                let first = try #require(try await router.events(of: user, after: nil).first?.eventId)
                let others = (0..<20).map { "\(user)-\($0)" }
                for other in others { try await router.emit("missed", data: ["n": 3], toUser: other, durable: true) }
                outage.setDown(true)
                let fresh = try await router.connect(userId: user, transport: "test")
                let resuming = try await router.connect(userId: user, lastEventId: first.description, transport: "test")
                var waiting: [Session] = []
                for other in others { waiting.append(try await router.connect(userId: other, transport: "test")) }
                #expect(fresh.bufferedCount == 0 && resuming.bufferedCount == 0)
                #expect(router.stats.counts.sessions == 22)
                outage.setDown(false)
                #expect(try await fresh.nextEvents(2).map { $0.data["n"] } == [1, 2])
                #expect(try await resuming.nextEvents(1).map { $0.data["n"] } == [2])
                for session in waiting {
                    #expect(try await session.nextEvent().data["n"] == 3)
                    session.close()
                }
                try await router.emit("live", data: [:], toUser: user, durable: true)
                #expect(try await fresh.nextEvent().name == "live")
                #expect(try await resuming.nextEvent().name == "live")
                #expect(fresh.bufferedCount == 0 && resuming.bufferedCount == 0)
                fresh.close()
                resuming.close()
            }
            // A router that is not running would never read the replay: the connection is refused.
            let idle = Router(broker: outage, configuration: RouterConfiguration(jobTypes: [names]))
            outage.setDown(true)
            await #expect(throws: BrokerError.self) { try await idle.connect(userId: user, transport: "test") }
            #expect(idle.stats.counts.sessions == 0)
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
                try await eventually("the delivered watermark", within: .seconds(10)) {
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
                try await eventually("the watermark after replay", within: .seconds(10)) {
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
}

/// A ``Latch`` that holds replays only once armed (a test's own reads before it go through).
final class ReplayLatch: Sendable {
    let latch = Latch()
    private let armed = Atomic(false)
    var isArmed: Bool { armed.load(ordering: .sequentiallyConsistent) }
    func arm() { armed.store(true, ordering: .sequentiallyConsistent) }
}
