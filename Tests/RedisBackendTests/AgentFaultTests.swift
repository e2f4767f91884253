import Broker
import BrokerTesting
import Logging
import RedisBackend
import Synchronization
import Testing

/// The agent against a Redis that freezes (SIGSTOP) just as a job finishes: the final status
/// and the job's removal could sit in the socket buffer of a connection the agent gave up,
/// and run when Redis wakes, with no gateway listening. The job must not end up reported
/// nowhere and taken by no one.
@Suite(
    "Agent on a freezing Redis",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason),
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct AgentFaultTests {
    /// Stops the server the first time a job finishes (the agent's next command is the
    /// status), then lets jobs finish normally.
    final class FreezingHandler: JobHandler {
        let server: RedisServerProcess
        let froze = Atomic<Bool>(false)

        init(server: RedisServerProcess) { self.server = server }

        func handle(_ job: JobRecord) async throws -> JSONValue {
            if !froze.exchange(true, ordering: .relaxed) { server.pause() }
            return ["ok": true]
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aStatusLostInAFrozenRedisLeavesTheJobToRunAgain() async throws {
        let server = try RedisServerProcess()
        try server.start()
        defer { server.resume() }
        let names = JobNames(prefix: "freeze", type: "rebalance")
        try await withRedisBroker(url: server.url, configure: { $0.commandTimeout = .milliseconds(300) }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            let record = JobRecord(
                jobId: "1-frozen", type: "rebalance", status: .created, user: .init(publicKey: "freeze-user"),
                payload: [:], createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z",
                history: [.init(status: .created, timestamp: "2026-01-01T00:00:00.000Z")])
            try await broker.set(names.record("1-frozen"), to: StoredRecord(record: record).bytes)
            try await broker.push("1-frozen", to: .head, of: names.queue)

            let handler = FreezingHandler(server: server)
            var logger = Logger(label: "test.agent")
            logger.logLevel = .critical
            let agent = Agent(
                broker: broker, handler: handler,
                configuration: AgentConfiguration(names: names, visibilityTimeout: .milliseconds(1500)), logger: logger)
            let running = Task { try await agent.run() }
            defer { running.cancel() }
            #expect(await eventually { handler.froze.load(ordering: .relaxed) }, "the job ran")
            // Frozen past the visibility timeout: the agent gives its reply up. Nobody listens on
            // the status channel, so the status the server runs on waking reaches no one.
            try await Task.sleep(for: .milliseconds(2_500))
            #expect(agent.statistics.done == 0, "the agent saw no answer to the status")
            server.resume()

            // The job is still taken (its lease lapsed): the reaper puts it back, and it runs
            // and is reported again, now to a listener.
            let heard = try await withDeadline("the job's done, published again", within: .seconds(20)) {
                try await broker.subscribe(to: names.statusChannel) { subscription in
                    for try await message in subscription {
                        let text = String(decoding: message.payload, as: UTF8.self)
                        if text.contains(#""jobId":"1-frozen""#) && text.contains(#""status":"done""#) { return true }
                    }
                    return false
                }
            }
            #expect(heard)
            #expect(await eventually { (try? await broker.length(of: names.processing)) == 0 }, "then it was removed")
        }
        await server.kill()
    }
}
