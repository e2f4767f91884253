import Broker
import Foundation
import Testing

@Suite("Job lifecycle on each backend")
struct JobLifecycleTests {
    @Test("full lifecycle: create → queued → guide agent BRPOP/GET/PUBLISH → history and events", arguments: TestBackend.all)
    func fullLifecycle(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"), type: "rebalance")
            let user = unique("user")
            try await withRouters(on: broker, configuration: RouterConfiguration(jobTypes: [names])) { routers in
                let router = routers[0]
                let session = try await router.connect(userId: user, transport: "test")
                defer { session.close() }
                let created = try await router.jobs("rebalance").create(payload: ["amount": 1000, "priority": "high"], for: user)

                // Stored with a 24 h TTL, queued, announced.
                #expect(try await broker.length(of: names.queue) == 1)
                guard case .expiresIn(let ttl) = try await broker.timeToLive(of: names.record(created.jobId)) else {
                    Issue.record("record has no TTL")
                    return
                }
                #expect(ttl > .seconds(86_000) && ttl <= .seconds(86_400))
                let createdEvent = try await session.nextEvent()
                #expect(createdEvent.name == "rebalance:created")
                #expect(createdEvent.data["jobId"] == .string(created.jobId))

                // An agent written as in the original guide.
                let agent = GuideAgent(broker: broker, names: names)
                let job = try await agent.take()
                #expect(job.jobId == created.jobId)
                #expect(job.user.publicKey == user)
                #expect(job.payload["amount"] == 1000)
                try await agent.publish(.processing, for: job)
                try await agent.publish(.done, for: job, extra: #","result":{"success":true,"fee":20}"#)

                let processing = try await session.nextEvent()
                let done = try await session.nextEvent()
                #expect(processing.name == "rebalance:processing")
                #expect(done.name == "rebalance:done")
                #expect(done.data["result"]?["fee"] == 20)
                #expect(done.data["userId"] == .string(user))
                let ids = [createdEvent, processing, done].map { $0.eventId! }
                #expect(ids == ids.sorted() && Set(ids).count == 3)
                // eventId travels in the data too, as a string.
                #expect(done.data["eventId"] == .string(ids[2].description))

                let record = try #require(try await router.jobs().record(created.jobId))
                #expect(record.status == .done)
                #expect(record.history.map(\.status) == [.created, .processing, .done])
                #expect(record.result?["success"] == true)
                let logged = try await router.events(of: user, after: nil)
                #expect(logged.map(\.name) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                #expect(logged.map { $0.eventId! } == ids)
                #expect(try await broker.length(of: names.queue) == 0)
            }
        }
    }

    @Test("a BRPOP consumer takes jobs oldest first (LPUSH)", arguments: TestBackend.all)
    func fifo(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"), type: "rebalance")
            let store = JobStore(broker: broker, names: names)
            var created: [String] = []
            for index in 0..<20 {
                created.append(try await store.create(payload: ["n": .integer(Int64(index))], for: "fifo-user").jobId)
            }
            let agent = GuideAgent(broker: broker, names: names)
            var taken: [String] = []
            for _ in 0..<20 { taken.append(try await agent.take().jobId) }
            #expect(taken == created)
            // Ids carry their creation time first, so they sort by it.
            let times = created.map { JobID.creationTime(of: $0)! }
            #expect(times == times.sorted())
        }
    }

    @Test("create is one atomic batch: when the queue push fails nothing is stored", arguments: TestBackend.all)
    func createIsAtomic(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"), type: "rebalance")
            let user = unique("user")
            // A string where the queue list should be makes LPUSH fail with WRONGTYPE.
            try await broker.set(names.queue, to: "not a list")
            let store = JobStore(broker: broker, names: names)
            await #expect(throws: BrokerError.self) {
                try await store.create(payload: ["amount": 1], for: user)
            }
            #expect(try await broker.length(of: JobNames.eventLog(userId: user)) == 0)
            #expect(try await broker.get(store.eventLog.sequenceKey(user)) == nil)
            #expect(store.counters.created == 0)
        }
    }

    @Test("create refuses a non-object payload and a bad user id", arguments: TestBackend.all)
    func createValidates(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let store = JobStore(broker: broker, names: JobNames(prefix: unique("t")))
            await #expect(throws: JobError.invalidPayload) { try await store.create(payload: [1, 2], for: "u") }
            await #expect(throws: JobError.invalidUser) { try await store.create(payload: [:], for: "") }
            await #expect(throws: JobError.invalidUser) { try await store.create(payload: [:], for: "a b") }
            #expect(try await store.broker.length(of: store.names.queue) == 0)
        }
    }

    @Test("final stays final: nothing after done is applied or routed", arguments: TestBackend.all)
    func finalStaysFinal(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let names = JobNames(prefix: unique("t"))
            let user = unique("user")
            let store = JobStore(broker: broker, names: names)
            let job = try await store.create(payload: [:], for: user)
            let update = { (status: JobStatus) in StatusUpdate(jobId: job.jobId, status: status, userId: user) }
            #expect(try await store.apply(update(.processing)).event != nil)
            #expect(try await store.apply(update(.done)).event != nil)
            #expect(try await store.apply(update(.error)) == .dropped(.afterFinal))
            #expect(try await store.apply(update(.retrying)) == .dropped(.afterFinal))
            // Copies of statuses already applied are duplicates, not late updates.
            #expect(try await store.apply(update(.processing)) == .dropped(.duplicate))
            #expect(try await store.apply(update(.done)) == .dropped(.duplicate))
            let record = try #require(try await store.record(job.jobId))
            #expect(record.status == .done)
            #expect(record.history.map(\.status) == [.created, .processing, .done])
            #expect(try await broker.length(of: JobNames.eventLog(userId: user)) == 3)
            #expect(store.counters.afterFinal == 2)
            #expect(store.counters.duplicates == 2)
        }
    }

    @Test("retrying may repeat once per attempt; error carries attempts", arguments: TestBackend.all)
    func retrying(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let store = JobStore(broker: broker, names: JobNames(prefix: unique("t")))
            let user = unique("user")
            let job = try await store.create(payload: [:], for: user)
            func apply(_ status: JobStatus, attempts: Int?, error: String? = nil) async throws -> StatusOutcome {
                try await store.apply(StatusUpdate(jobId: job.jobId, status: status, userId: user, error: error, attempts: attempts))
            }
            #expect(try await apply(.processing, attempts: 1).event != nil)
            #expect(try await apply(.retrying, attempts: 1).event != nil)
            #expect(try await apply(.retrying, attempts: 1) == .dropped(.duplicate))
            #expect(try await apply(.retrying, attempts: 2).event != nil)
            #expect(try await apply(.error, attempts: 3, error: "Invalid amount").event != nil)
            let record = try #require(try await store.record(job.jobId))
            #expect(record.history.map(\.status) == [.created, .processing, .retrying, .retrying, .error])
            #expect(record.attempts == 3)
            #expect(record.error == "Invalid amount")
        }
    }

    @Test("reading: unknown, expired-shaped and another user's job", arguments: TestBackend.all)
    func lookup(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let store = JobStore(broker: broker, names: JobNames(prefix: unique("t")))
            let job = try await store.create(payload: ["a": 1], for: "owner")
            #expect(try await store.lookup(job.jobId, for: "owner") == .found(job))
            #expect(try await store.lookup(job.jobId, for: "intruder") == .notOwner)
            #expect(try await store.lookup("1731304200000-nope", for: "owner") == .notFound)
            #expect(try await store.lookup("bad id with spaces", for: "owner") == .notFound)
            #expect(try await store.canFollow(jobId: job.jobId, userId: "owner"))
            #expect(try await !store.canFollow(jobId: job.jobId, userId: "intruder"))
            // A stored value that is not a record is reported, not misread.
            try await broker.set(store.names.record("1-corrupt"), to: "{oops")
            await #expect(throws: JobError.corruptRecord("1-corrupt")) { try await store.record("1-corrupt") }
        }
    }

    /// Other software may write a record our format does not read (a member of another type,
    /// no status) that an agent still runs, needing only its owner. Its statuses reach that
    /// owner, once across nodes, and the record is left as written; another user's status is
    /// dropped; a value without a readable owner still fails.
    @Test("statuses of a record not in job format reach its owner; the record is left alone", arguments: TestBackend.all)
    func recordNotInJobFormat(backend: TestBackend) async throws {
        try await backend.withBroker { broker async throws in
            let store = JobStore(broker: broker, names: JobNames(prefix: unique("t")))
            let jobId = "1731304200000-foreign"
            let written = #"{"jobId":"1731304200000-foreign","user":{"publicKey":"owner"},"error":{"code":1}}"#
            try await broker.set(store.names.record(jobId), to: written)
            let done = StatusUpdate(jobId: jobId, status: .done, userId: "owner", result: ["ok": true])
            guard case .routedWithoutRecord(let event) = try await store.apply(done) else {
                Issue.record("the owner's status was not routed")
                return
            }
            #expect(event.name == "rebalance:done" && event.room == "user:owner")
            #expect(try await store.apply(done) == .dropped(.duplicate))  // another node hearing it too
            let stolen = StatusUpdate(jobId: jobId, status: .error, userId: "intruder", error: "x")
            #expect(try await store.apply(stolen) == .dropped(.wrongOwner))
            #expect(try await broker.string(store.names.record(jobId)) == written)
            // Its owner reads it as written; nobody else does.
            #expect(try await store.lookup(jobId, for: "owner") == .foundAsWritten(Array(written.utf8)))
            #expect(try await store.lookup(jobId, for: "intruder") == .notOwner)
            #expect(try await store.canFollow(jobId: jobId, userId: "owner"))

            try await broker.set(store.names.record("1-ownerless"), to: #"{"jobId":"1-ownerless","status":7}"#)
            let orphan = StatusUpdate(jobId: "1-ownerless", status: .done, userId: "owner")
            guard case .failed = try await store.apply(orphan) else {
                Issue.record("a status for a value without an owner was not refused")
                return
            }
            await #expect(throws: JobError.corruptRecord("1-ownerless")) { try await store.lookup("1-ownerless", for: "owner") }
        }
    }
}
