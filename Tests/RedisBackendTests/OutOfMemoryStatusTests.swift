import Broker
import Foundation
import Logging
import RedisBackend
import Testing

/// A Redis at `maxmemory` (policy `noeviction`) refuses every write that may grow memory
/// (`OOM …`) but still carries PUBLISH. An agent's `done` is heard then; the router must keep
/// it and apply it once memory is freed, or the job stays `processing` for ever.
@Suite(
    "Statuses while Redis is out of memory",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason),
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct OutOfMemoryStatusTests {
    @Test(.timeLimit(.minutes(1)))
    func statusHeardDuringOutOfMemoryIsAppliedOnceMemoryIsFreed() async throws {
        let server = try RedisServerProcess()
        try server.start(["--maxmemory-policy", "noeviction"])
        try await withRedisBroker(url: server.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            let names = JobNames(prefix: "oom")
            let router = Router(broker: broker, configuration: RouterConfiguration(jobTypes: [names]))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await router.run() }
                defer { group.cancelAll() }
                await router.waitUntilSubscribed()
                let session = try await router.connect(userId: "alice", transport: "test")
                defer { session.close() }
                let job = try await router.jobs().create(payload: ["amount": 5], for: "alice")
                #expect(try await Self.next(session)?.name == "rebalance:created")

                // One byte: every write that may grow memory is refused from now on.
                try server.configure(["maxmemory", "1"])
                do {
                    try await broker.set("oom:probe", to: "v")
                    Issue.record("a write was accepted over maxmemory")
                } catch let error as BrokerError {
                    #expect(error.code == .outOfMemory, "\(error)")
                }
                for status in ["processing", "done"] {
                    let message = #"{"jobId":"\#(job.jobId)","status":"\#(status)","userId":"alice","timestamp":"2026-01-01T00:00:00.000Z"}"#
                    #expect(try await broker.publish(message, to: names.statusChannel) == 1)
                }
                #expect(await eventually { router.stats.jobs["rebalance"]!.statusReceived == 2 })
                // Refused for a while: the router keeps both, applies neither.
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await router.jobs().record(job.jobId)?.status == .created)

                try server.configure(["maxmemory", "0"])
                #expect(try await Self.next(session)?.name == "rebalance:processing")
                #expect(try await Self.next(session)?.name == "rebalance:done")
                let record = try #require(try await router.jobs().record(job.jobId))
                #expect(record.status == .done)
                #expect(record.history.map(\.status) == [.created, .processing, .done])
                #expect(router.stats.jobs["rebalance"]!.failed == 0)
            }
        }
        await server.kill()
    }

    /// The session's next event, or `nil` if none comes within 10 s.
    private static func next(_ session: Session) async throws -> RoutedEvent? {
        try await withThrowingTaskGroup(of: RoutedEvent?.self) { group in
            group.addTask {
                var iterator = session.makeAsyncIterator()
                return await iterator.next()
            }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
