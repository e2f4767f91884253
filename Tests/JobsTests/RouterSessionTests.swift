import Broker
import BrokerTesting
import Foundation
import Logging
import ServiceLifecycle
import Testing

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
    @Test("shutdown ends run() and closes the node's sessions", arguments: TestBackend.all)
    func shutdown(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let router = Router(broker: broker, configuration: RouterConfiguration(jobTypes: [JobNames(prefix: unique("t"))]))
            let session = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await router.run() }
                try await withDeadline("router subscriptions", within: .seconds(10)) { await router.waitUntilSubscribed() }
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
                try await withDeadline("router subscriptions", within: .seconds(10)) { await router.waitUntilSubscribed() }
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
