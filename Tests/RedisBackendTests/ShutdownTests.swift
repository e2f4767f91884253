import Broker
import Logging
import RedisBackend
import Synchronization
import Testing

@Suite("Redis shutdown", .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct ShutdownTests {
    /// When `run()` ends (graceful shutdown or cancellation), every connection closes: a
    /// blocked consumer and a subscriber end with `shutDown`, later calls fail the same way.
    @Test(.timeLimit(.minutes(1)))
    func endingRunClosesEverything() async throws {
        let url = try #require(RedisTestServer.url)
        let p = RedisTestServer.uniquePrefix()
        let broker = RedisBroker(configuration: try RedisConfiguration(url: url), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: BrokerError.Code?.self) { consumers in
            try await withThrowingTaskGroup(of: Void.self) { service in
                service.addTask { try await broker.run() }
                try await broker.ping()
                consumers.addTask {
                    do {
                        _ = try await broker.blockingPop(from: .head, of: [p + "never"], timeout: nil)
                        return nil
                    } catch let error as BrokerError {
                        return error.code
                    }
                }
                consumers.addTask {
                    do {
                        try await broker.subscribe(to: p + "channel") { subscription in
                            for try await _ in subscription {}
                        }
                        return nil
                    } catch let error as BrokerError {
                        return error.code
                    }
                }
                #expect(await eventually {
                    let blocked = (try? await broker.clientsBlocked()) ?? 0
                    let subscribers = (try? await broker.publish("ping", to: p + "channel")) ?? 0
                    return blocked >= 1 && subscribers == 1
                })
                service.cancelAll()  // what a ServiceGroup does on graceful shutdown, in effect
            }
            var codes: [BrokerError.Code?] = []
            for try await code in consumers { codes.append(code) }
            #expect(codes == [.shutDown, .shutDown])
        }
        await #expect(throws: BrokerError.self) { try await broker.ping() }
    }

    /// `shutdown()` called while `run()` runs (as the jobs bench does before cancelling) ends
    /// `run()`: there is nothing left to keep up. Its reconnect loops used to spin on the
    /// shut-down connections, a pool thread each, until cancelled.
    @Test(.timeLimit(.minutes(1)))
    func shutdownWhileRunningEndsRun() async throws {
        let broker = RedisBroker(
            configuration: try RedisConfiguration(url: try #require(RedisTestServer.url)), logger: Logger(label: "test"))
        let ended = Atomic<Bool>(false)
        let service = Task {
            try await broker.run()
            ended.store(true, ordering: .relaxed)
        }
        #expect(await eventually { (try? await broker.ping()) != nil })
        broker.shutdown()
        #expect(await eventually { ended.load(ordering: .relaxed) }, "run() ended by itself")
        service.cancel()
        _ = await service.result
    }
}
