import Broker
import RedisBackend
import Testing

@Suite("Redis command executor", .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct CommandExecutorTests {
    /// Everything works from a task that prefers the command connection's I/O thread: plain
    /// calls, batches, blocking pops (resumed from another connection's thread) and
    /// subscriptions, and a call made while that task runs there does not deadlock.
    @Test(.timeLimit(.minutes(1)))
    func everythingWorksOnTheCommandExecutor() async throws {
        let p = RedisTestServer.uniquePrefix()
        try await withRedisBroker { broker in
            try await withTaskExecutorPreference(broker.commandExecutor) { () async throws -> Void in
                for index in 0..<200 {
                    try await broker.set(p + "k\(index % 7)", to: "\(index)")
                    #expect(try await broker.string(p + "k\(index % 7)") == "\(index)")
                }
                let replies = try await broker.execute(
                    [.push([[1], [2]], end: .tail, queue: p + "q"), .length(queue: p + "q")], atomically: true)
                #expect(replies == [.integer(2), .integer(2)])
                async let popped = broker.blockingPop(from: .head, of: [p + "w"], timeout: .seconds(10))
                #expect(await eventually { (try? await broker.clientsBlocked()) ?? 0 >= 1 })
                try await broker.push("v", to: .tail, of: p + "w")
                #expect(try await popped?.value == Array("v".utf8))
                try await broker.subscribe(to: p + "c") { (subscription: Subscription) async throws -> Void in
                    #expect(try await broker.publish("m", to: p + "c") == 1)
                    #expect(try await nextMessage(subscription)?.payload == Array("m".utf8))
                }
            }
            _ = try await broker.delete((0..<7).map { p + "k\($0)" } + [p + "q"])
        }
    }
}
