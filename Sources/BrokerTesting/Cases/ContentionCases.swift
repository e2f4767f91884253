import Broker
import Foundation
import Testing

/// Many clients at once: nothing lost, nothing duplicated, no update overwritten.
extension BrokerConformance {
    static let contentionCases: [ConformanceCase] = [
        ConformanceCase("contention: BLMOVE with 8 consumers and 500 items moves each item exactly once") { t async throws in
            let source = t.key("source"), destination = t.key("destination")
            let items = (0..<500).map { "item-\($0)" }
            let moved = SharedCounter()
            let taken = try await withDeadline("500 items to be moved", within: .seconds(60)) {
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for consumer in 0..<8 {
                        let client = consumer.isMultiple(of: 2) ? t.broker : t.peer
                        group.addTask {
                            var mine: [String] = []
                            while moved.value < items.count && !Task.isCancelled {
                                let value = try await client.blockingMove(
                                    from: source, .tail, to: destination, .head, timeout: .milliseconds(200))
                                if let value {
                                    mine.append(value.text)
                                    moved.add()
                                }
                            }
                            return mine
                        }
                    }
                    group.addTask {
                        for batch in stride(from: 0, to: items.count, by: 25) {
                            let client = (batch / 25).isMultiple(of: 2) ? t.peer : t.broker
                            try await client.push(items[batch..<(batch + 25)].map(\.bytes), to: .head, of: source)
                        }
                        return []
                    }
                    var all: [String] = []
                    for try await part in group { all += part }
                    return all
                }
            }
            #expect(taken.count == items.count, "each item taken once by some consumer")
            #expect(Set(taken) == Set(items))
            let landed = try await t.contents(of: destination)
            #expect(landed.count == items.count, "each item in the destination exactly once")
            #expect(Set(landed) == Set(items))
            #expect(try await t.broker.length(of: source) == 0)
        },
        ConformanceCase("contention: 1,000 concurrent increments from two clients count exactly") { t async throws in
            let key = t.key("counter")
            let results = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for worker in 0..<20 {
                    let client = worker.isMultiple(of: 2) ? t.broker : t.peer
                    group.addTask {
                        var seen: [Int64] = []
                        for _ in 0..<50 { seen.append(try await client.increment(key)) }
                        return seen
                    }
                }
                var all: [Int64] = []
                for try await part in group { all += part }
                return all
            }
            #expect(try await t.broker.string(key) == "1000")
            #expect(results.sorted() == Array(1...1000), "every increment saw a distinct value")
        },
        ConformanceCase("contention: read-modify-write by 50 tasks through update() loses no update") { t async throws in
            let key = t.key("list")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in 0..<50 {
                    let client = id.isMultiple(of: 2) ? t.broker : t.peer
                    group.addTask {
                        _ = try await client.update(key) { current in
                            var ids = try current.map { try JSONDecoder().decode([Int].self, from: Data($0)) } ?? []
                            ids.append(id)
                            return Array(try JSONEncoder().encode(ids))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let ids = try #require(try await t.broker.get(key, as: [Int].self))
            #expect(ids.sorted() == Array(0..<50))
        },
    ]
}
