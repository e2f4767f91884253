import Broker
import Foundation
@testable import RedisBackend
import Testing

@Suite("Atomic batches: the lean script where only list types can make them fail")
struct AtomicBatchPlanTests {
    private let record = BrokerCommand.set(key: "job:1", value: [1], expiry: .after(.seconds(60)), condition: .always)

    @Test func aRecordAndItsQueuedIdCheckOnlyTheQueue() {
        #expect(AtomicBatch.keysToCheck([record, .push([[1]], end: .head, queue: "q")]) == ["q"])
        #expect(
            AtomicBatch.keysToCheck([
                .push([[1]], end: .tail, queue: "log"), .trim(queue: "log", start: -100, stop: -1),
                .expire(key: "log", after: .seconds(5)), .publish(payload: [1], channel: "c"), .delete(keys: ["x"]),
            ]) == ["log"])
        #expect(AtomicBatch.keysToCheck([record, .publish(payload: [1], channel: "c")]) == [])
    }

    @Test func eachListKeyIsCheckedOnceInFirstSeenOrder() {
        let commands: [BrokerCommand] = (0..<300).flatMap { n -> [BrokerCommand] in
            [.push([[1]], end: .tail, queue: "log:\(n % 150)"), .trim(queue: "log:\(n % 150)", start: -100, stop: -1),
             .set(key: "seq:\(n)", value: [1], expiry: .never, condition: .always)]
        }
        #expect(AtomicBatch.keysToCheck(commands) == (0..<150).map { "log:\($0)" })
        #expect(AtomicBatch.keysToCheck(commands + [.set(key: "log:149", value: [1], expiry: .never, condition: .always)]) == nil)
    }

    @Test func integerArgumentsAreWrittenInDecimal() {
        for value: Int64 in [0, 7, 9, 10, 99, 100, 86_400_000, -1, -100, Int64.max, Int64.min] {
            var encoder = RESPEncoder()
            encoder.header(1)
            encoder.argument(value)
            let text = "\(value)"
            #expect(String(decoding: encoder.bytes, as: UTF8.self) == "*1\r\n$\(text.utf8.count)\r\n\(text)\r\n")
        }
    }

    @Test func batchesWhoseSuccessDependsOnMoreNeedTheFullScript() {
        // A SET turns a checked key into a string before a list command on it.
        #expect(AtomicBatch.keysToCheck([.set(key: "q", value: [1], expiry: .never, condition: .always),
                                         .push([[1]], end: .head, queue: "q")]) == nil)
        #expect(AtomicBatch.keysToCheck([record, .get(key: "job:1")]) == nil)
        #expect(AtomicBatch.keysToCheck([.increment(key: "n", by: 1)]) == nil)
        #expect(AtomicBatch.keysToCheck([.move(source: "a", sourceEnd: .tail, destination: "b", destinationEnd: .head)]) == nil)
    }
}

@Suite(
    "Atomic batches on Redis, lean and full",
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct AtomicBatchScriptTests {
    @Test(.timeLimit(.minutes(1)))
    func bothScriptsApplyAllOrNothingAndSurviveAScriptFlush() async throws {
        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            for round in ["before", "after"] {
                let p = "\(round):"
                try await broker.set(p + "string", to: "text")
                // Lean: replies in order, each command's own.
                let replies = try await broker.execute(
                    [.set(key: p + "record", value: [1], expiry: .after(.seconds(60)), condition: .always),
                     .push([[1], [2]], end: .head, queue: p + "queue"),
                     .set(key: p + "record", value: [2], expiry: .never, condition: .ifAbsent),
                     .pop(end: .tail, queue: p + "queue"), .pop(end: .tail, queue: p + "none"),
                     .publish(payload: [1], channel: p + "channel")], atomically: true)
                #expect(replies == [.ok, .integer(2), .null, .value([1]), .null, .integer(0)])
                // Lean, failing on a checked key: nothing applied.
                await #expect(throws: BrokerError.self) {
                    try await broker.execute(
                        [.set(key: p + "other", value: [1], expiry: .never, condition: .always),
                         .push([[1]], end: .head, queue: p + "string")], atomically: true)
                }
                #expect(try await broker.get(p + "other") == nil)
                // Full: a SET then a list command on the same key fails and is undone.
                await #expect(throws: BrokerError.self) {
                    try await broker.execute(
                        [.push([[9]], end: .head, queue: p + "queue"),
                         .set(key: p + "queue", value: [1], expiry: .never, condition: .always),
                         .push([[1]], end: .head, queue: p + "queue")], atomically: true)
                }
                #expect(try await broker.range(of: p + "queue") == [[2]])
                // A transaction (its batch goes between MULTI and EXEC).
                let written = try await broker.update(p + "counter", expiry: .never) { current in
                    Array(String((current.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0) + 1).utf8)
                }
                #expect(written == Array("1".utf8))
                if round == "before" {
                    // The server forgets every script: the broker sends them again.
                    let flush = try ChildProcess(["redis-cli", "-p", String(server.port), "SCRIPT", "FLUSH"])
                    #expect(await flush.waitForExit() == 0)
                }
            }
        }
        await server.kill()
    }
}
