import Broker
import Testing

/// Non-blocking list commands, checked against Redis 7 (`LPUSH`, `RPUSH`, `LPOP`/`RPOP`,
/// `LMOVE`, `LREM`, `LRANGE`, `LTRIM`, `LLEN`).
extension BrokerConformance {
    static let queueCases: [ConformanceCase] = [
        ConformanceCase("queues: variadic push order (LPUSH a b c gives c b a, RPUSH keeps a b c)") { t async throws in
            let head = t.key("head"), tail = t.key("tail")
            #expect(try await t.broker.push(["a", "b", "c"].map(\.bytes), to: .head, of: head) == 3)
            #expect(try await t.contents(of: head) == ["c", "b", "a"])
            #expect(try await t.broker.push(["a", "b", "c"].map(\.bytes), to: .tail, of: tail) == 3)
            #expect(try await t.contents(of: tail) == ["a", "b", "c"])
            #expect(try await t.broker.push("d", to: .head, of: tail) == 4)
            #expect(try await t.contents(of: tail) == ["d", "a", "b", "c"])
        },
        ConformanceCase("queues: LPUSH then RPOP is FIFO, RPUSH then RPOP is LIFO") { t async throws in
            let queue = t.key("fifo"), stack = t.key("lifo")
            for item in 1...5 {
                try await t.broker.push("\(item)", to: .head, of: queue)
                try await t.peer.push("\(item)", to: .tail, of: stack)
            }
            var fromQueue: [String] = [], fromStack: [String] = []
            for _ in 1...5 {
                fromQueue.append(try #require(try await t.broker.pop(from: .tail, of: queue)).text)
                fromStack.append(try #require(try await t.broker.pop(from: .tail, of: stack)).text)
            }
            #expect(fromQueue == ["1", "2", "3", "4", "5"])
            #expect(fromStack == ["5", "4", "3", "2", "1"])
        },
        ConformanceCase("queues: pop from an empty or missing queue gives nil") { t async throws in
            let queue = t.key("q")
            #expect(try await t.broker.pop(from: .tail, of: queue) == nil)
            #expect(try await t.broker.pop(from: .head, of: queue) == nil)
            try await t.broker.push("x", to: .head, of: queue)
            #expect(try await t.broker.pop(from: .head, of: queue) == "x".bytes)
            #expect(try await t.broker.pop(from: .head, of: queue) == nil)
        },
        ConformanceCase("queues: LLEN counts, 0 for a missing queue") { t async throws in
            let queue = t.key("q")
            #expect(try await t.broker.length(of: queue) == 0)
            try await t.broker.push(["a", "b", "c"].map(\.bytes), to: .tail, of: queue)
            #expect(try await t.peer.length(of: queue) == 3)
            _ = try await t.broker.pop(from: .head, of: queue)
            #expect(try await t.broker.length(of: queue) == 2)
        },
        ConformanceCase("queues: LREM with positive, negative and zero counts") { t async throws in
            let items = ["x", "y", "x", "z", "x", "x"].map(\.bytes)
            let front = t.key("front"), back = t.key("back"), all = t.key("all")
            for queue in [front, back, all] { try await t.broker.push(items, to: .tail, of: queue) }
            #expect(try await t.broker.remove("x".bytes, count: 2, from: front) == 2)
            #expect(try await t.contents(of: front) == ["y", "z", "x", "x"])
            #expect(try await t.broker.remove("x".bytes, count: -2, from: back) == 2)
            #expect(try await t.contents(of: back) == ["x", "y", "x", "z"])
            #expect(try await t.broker.remove("x".bytes, count: 0, from: all) == 4)
            #expect(try await t.contents(of: all) == ["y", "z"])
            #expect(try await t.broker.remove("absent".bytes, count: 0, from: all) == 0)
            #expect(try await t.broker.remove("y".bytes, count: 0, from: t.key("missing")) == 0)
        },
        ConformanceCase("queues: LRANGE with negative and out-of-range indices") { t async throws in
            let queue = t.key("q")
            try await t.broker.push(["a", "b", "c"].map(\.bytes), to: .tail, of: queue)
            func range(_ start: Int, _ stop: Int) async throws -> [String] {
                try await t.broker.range(of: queue, from: start, through: stop).map(\.text)
            }
            #expect(try await range(0, -1) == ["a", "b", "c"])
            #expect(try await range(-100, 100) == ["a", "b", "c"])
            #expect(try await range(1, 100) == ["b", "c"])
            #expect(try await range(-2, -1) == ["b", "c"])
            #expect(try await range(5, 10) == [])
            #expect(try await range(2, 1) == [])
            #expect(try await range(-1, -2) == [])
            #expect(try await range(0, 0) == ["a"])
            #expect(try await t.broker.range(of: t.key("missing")) == [])
        },
        ConformanceCase("queues: LTRIM with negative and out-of-range indices; trimmed to nothing, the key is gone") {
            t async throws in
            let queue = t.key("q")
            try await t.broker.push(["a", "b", "c", "d", "e"].map(\.bytes), to: .tail, of: queue)
            try await t.broker.trim(queue, from: 1, through: -2)
            #expect(try await t.contents(of: queue) == ["b", "c", "d"])
            try await t.broker.trim(queue, from: -100, through: 100)
            #expect(try await t.contents(of: queue) == ["b", "c", "d"])
            try await t.broker.trim(queue, from: 0, through: 0)
            #expect(try await t.contents(of: queue) == ["b"])
            try await t.broker.trim(queue, from: 5, through: 10)
            #expect(try await t.broker.timeToLive(of: queue) == .missing)
            try await t.broker.trim(t.key("missing"), from: 0, through: 1)
            #expect(try await t.broker.timeToLive(of: t.key("missing")) == .missing)
        },
        ConformanceCase("queues: a list emptied by pop, LREM or move no longer exists") { t async throws in
            let popped = t.key("popped"), removed = t.key("removed"), moved = t.key("moved")
            try await t.broker.push("x", to: .head, of: popped)
            _ = try await t.broker.pop(from: .tail, of: popped)
            #expect(try await t.broker.timeToLive(of: popped) == .missing)
            try await t.broker.push(["x", "x"].map(\.bytes), to: .head, of: removed)
            try await t.broker.remove("x".bytes, from: removed)
            #expect(try await t.broker.timeToLive(of: removed) == .missing)
            try await t.broker.push("x", to: .head, of: moved)
            #expect(try await t.broker.move(from: moved, .tail, to: t.key("elsewhere"), .head) == "x".bytes)
            #expect(try await t.broker.timeToLive(of: moved) == .missing)
            // Gone means gone: the name is free for a string now.
            #expect(try await t.broker.set(popped, to: "now a string", condition: .ifAbsent))
        },
        ConformanceCase("queues: LMOVE between lists, onto itself, and from an empty list") { t async throws in
            let source = t.key("source"), destination = t.key("destination")
            try await t.broker.push(["a", "b", "c"].map(\.bytes), to: .tail, of: source)
            #expect(try await t.broker.move(from: source, .tail, to: destination, .head) == "c".bytes)
            #expect(try await t.broker.move(from: source, .head, to: destination, .tail) == "a".bytes)
            #expect(try await t.contents(of: source) == ["b"])
            #expect(try await t.contents(of: destination) == ["c", "a"])
            // Rotation: the tail becomes the head of the same list.
            #expect(try await t.broker.move(from: destination, .tail, to: destination, .head) == "a".bytes)
            #expect(try await t.contents(of: destination) == ["a", "c"])
            let empty = t.key("empty")
            #expect(try await t.broker.move(from: empty, .tail, to: destination, .head) == nil)
            #expect(try await t.contents(of: destination) == ["a", "c"])
            #expect(try await t.broker.timeToLive(of: empty) == .missing)
        },
    ]
}
