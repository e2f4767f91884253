import Broker
import Testing

/// Several commands in one call: atomic batches (`MULTI`/`EXEC`) and pipelines.
extension BrokerConformance {
    static let batchCases: [ConformanceCase] = [
        ConformanceCase("batch: an atomic batch applies fully, replies in order") { t async throws in
            let a = t.key("a"), queue = t.key("q"), counter = t.key("counter")
            let replies = try await t.broker.execute(
                [
                    .set(key: a, value: "1".bytes, expiry: .never, condition: .always),
                    .push(["x", "y"].map(\.bytes), end: .tail, queue: queue),
                    .increment(key: counter, by: 2),
                    .get(key: a),
                    .set(key: a, value: "2".bytes, expiry: .never, condition: .ifAbsent),
                    .range(queue: queue, start: 0, stop: -1),
                ], atomically: true)
            #expect(
                replies == [
                    .ok, .integer(2), .integer(2), .value("1".bytes), .null,
                    .array([.value("x".bytes), .value("y".bytes)]),
                ])
            #expect(try await t.peer.string(a) == "1")
            #expect(try await t.peer.range(of: queue).map(\.text) == ["x", "y"])
            #expect(try await t.peer.string(counter) == "2")
            #expect(try await t.broker.execute([], atomically: true) == [])
        },
        ConformanceCase("batch: an atomic batch with a wrongType command throws and applies nothing") { t async throws in
            let a = t.key("a"), string = t.key("string"), counter = t.key("counter")
            try await t.broker.set(string, to: "text")
            await expectBrokerError(.wrongType, "SET + LPUSH onto a string, atomically") {
                _ = try await t.broker.execute(
                    [
                        .set(key: a, value: "1".bytes, expiry: .never, condition: .always),
                        .increment(key: counter, by: 1),
                        .push(["x"].map(\.bytes), end: .head, queue: string),
                    ], atomically: true)
            }
            #expect(try await t.broker.get(a) == nil, "the SET before the failing command must not apply")
            #expect(try await t.broker.get(counter) == nil)
            #expect(try await t.broker.string(string) == "text")
        },
        ConformanceCase("batch: a pipeline runs each command on its own; a failed one is a .error reply") { t async throws in
            let a = t.key("a"), string = t.key("string"), counter = t.key("counter")
            try await t.broker.set(string, to: "text")
            let replies = try await t.broker.execute(
                [
                    .set(key: a, value: "1".bytes, expiry: .never, condition: .always),
                    .push(["x"].map(\.bytes), end: .head, queue: string),
                    .increment(key: string, by: 1),
                    .increment(key: counter, by: 1),
                ], atomically: false)
            try #require(replies.count == 4)
            #expect(replies[0] == .ok)
            guard case .error(let pushError) = replies[1], case .error(let incrementError) = replies[2] else {
                Issue.record("expected errors for the LPUSH and INCR on a string, got \(replies)")
                return
            }
            #expect(pushError.code == .wrongType)
            #expect(incrementError.code == .notAnInteger)
            #expect(replies[3] == .integer(1))
            #expect(try await t.broker.string(a) == "1")
            #expect(try await t.broker.string(counter) == "1")
            #expect(try await t.broker.execute([], atomically: false) == [])
        },
        ConformanceCase("batch: another client never observes half of an atomic batch") { t async throws in
            let a = t.key("a"), b = t.key("b")
            try await t.broker.set(a, to: "0")
            try await t.broker.set(b, to: "0")
            let writes = 200
            let observations = try await withDeadline("the writer and reader to finish", within: .seconds(60)) {
                try await withThrowingTaskGroup(of: [String].self) { group in
                    let done = SharedCounter()
                    group.addTask {
                        for round in 1...writes {
                            _ = try await t.broker.execute(
                                [
                                    .set(key: a, value: "\(round)".bytes, expiry: .never, condition: .always),
                                    .set(key: b, value: "\(round)".bytes, expiry: .never, condition: .always),
                                ], atomically: true)
                        }
                        done.add()
                        return []
                    }
                    group.addTask {
                        var torn: [String] = []
                        var reads = 0
                        // Keep reading until the writer is done, and at least a few times.
                        while done.value == 0 || reads < 10 {
                            let pair = try await t.peer.execute([.get(key: a), .get(key: b)], atomically: true)
                            let values = try pair.map { try $0.value()?.text ?? "nil" }
                            if values[0] != values[1] { torn.append("a=\(values[0]) b=\(values[1])") }
                            reads += 1
                        }
                        return torn
                    }
                    var torn: [String] = []
                    for try await part in group { torn += part }
                    return torn
                }
            }
            #expect(observations.isEmpty, "torn reads: \(observations.prefix(5))")
            #expect(try await t.broker.string(b) == "\(writes)")
        },
    ]
}
