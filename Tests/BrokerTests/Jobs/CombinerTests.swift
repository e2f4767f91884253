import Broker
import Synchronization
import Testing

/// A value shared by test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func get() -> Value { value.withLock { $0 } }
    func update(_ body: (inout Value) -> Void) { value.withLock { body(&$0) } }
}

@Suite("Group commit (Combiner)")
struct CombinerTests {
    @Test("concurrent requests are handled in batches, each answered with its own outcome")
    func batches() async throws {
        let combiner = Combiner<Int, Int>(maxBatch: 64)
        let batches = Shared<[[Int]]>([])
        let gate = Shared(false)
        let held = Shared(0)  // requests in the batch the first leader holds
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for request in 0..<100 {
                group.addTask {
                    let response = try await combiner.submit(request) { batch in
                        // The first leader holds its batch until the others have queued behind
                        // it. Its batch may already carry more than its own request.
                        if !gate.get() { held.update { $0 = batch.count } }
                        while !gate.get() { await Task.yield() }
                        batches.update { $0.append(batch) }
                        return batch.map { .success($0 * 10) }
                    }
                    return (request, response)
                }
            }
            while held.get() == 0 || held.get() + combiner.waitingCount < 100 { await Task.yield() }
            gate.update { $0 = true }
            return try await group.reduce(into: [Int: Int]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 100 && results.allSatisfy { $0.value == $0.key * 10 })
        let sizes = batches.get().map(\.count)
        #expect(sizes.reduce(0, +) == 100)
        #expect(sizes.max() == 64, "queued requests share a batch, up to the limit")
        #expect(sizes.count <= 4)
    }

    @Test("a cancelled leader fails only its own request; the ones it carried are retried by their callers")
    func cancelledLeader() async throws {
        let combiner = Combiner<Int, Int>(maxBatch: 16)
        let leaderStarted = Shared(false)
        let leader = Task {
            try await combiner.submit(0) { batch in
                leaderStarted.update { $0 = true }
                // Wait (cooperatively) for cancellation, then fail the whole batch as a broker would.
                while !Task.isCancelled { await Task.yield() }
                return batch.map { _ in .failure(CancellationError()) }
            }
        }
        while !leaderStarted.get() { await Task.yield() }
        let followers = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for request in 1...5 {
                    group.addTask { try await combiner.submit(request) { batch in batch.map { .success($0 + 100) } } }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }.sorted()
            }
        }
        while combiner.waitingCount < 5 { await Task.yield() }
        leader.cancel()
        await #expect(throws: CancellationError.self) { try await leader.value }
        #expect(try await followers.value == [101, 102, 103, 104, 105])
    }
}
