import Broker
import RedisBackend
import Testing

@Suite("Redis blocking consumers", .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct BlockingStressTests {
    /// Cancelling blocked consumers (CLIENT UNBLOCK from the command connection) loses no value:
    /// every value pushed is taken by exactly one consumer or stays in the queue.
    @Test(.timeLimit(.minutes(1)))
    func cancellingConsumersLosesNothing() async throws {
        let p = RedisTestServer.uniquePrefix()
        let queue = p + "q"
        try await withRedisBroker { broker in
            let pushed = (0..<30).map { "v\($0)" }
            var taken: [String] = []
            try await withThrowingTaskGroup(of: String?.self) { group in
                var cancellable: [Task<String?, any Error>] = []
                for _ in 0..<10 {
                    cancellable.append(Task {
                        try await broker.blockingPop(from: .tail, of: [queue], timeout: nil).map {
                            String(decoding: $0.value, as: UTF8.self)
                        }
                    })
                }
                for _ in 0..<10 {
                    group.addTask {
                        try await broker.blockingPop(from: .tail, of: [queue], timeout: .seconds(20)).map {
                            String(decoding: $0.value, as: UTF8.self)
                        }
                    }
                }
                #expect(await eventually { (try? await broker.clientsBlocked()) ?? 0 >= 20 })
                // Cancel half of the consumers while values arrive.
                for (index, value) in pushed.enumerated() {
                    if index < cancellable.count { cancellable[index].cancel() }
                    try await broker.push(value, to: .head, of: queue)
                }
                for task in cancellable {
                    if let value = try await task.value { taken.append(value) }
                }
                for try await value in group {
                    if let value { taken.append(value) }
                }
            }
            let left = try await broker.range(of: queue).map { String(decoding: $0, as: UTF8.self) }
            #expect((taken + left).sorted() == pushed.sorted(), "every value exactly once")
            #expect(taken.count >= 10, "the ten consumers that were not cancelled got a value each")
            _ = try await broker.delete(queue)
        }
    }
}
