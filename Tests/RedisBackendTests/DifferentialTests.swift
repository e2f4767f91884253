import Broker
import MemoryBackend
import RedisBackend
import Testing

/// The memory backend must behave as Redis does. A seeded random walk of commands over a few
/// lists, strings with TTLs and counters (including wrong-type and non-integer cases, atomic
/// batches and pipelines) runs against both; every reply, or error code, must be the same.
///
/// No command depends on time passing: TTLs are long (tens of seconds) or already over
/// (≤ 0 deletes at once), and remaining TTLs are compared within a tolerance.
@Suite("Memory and Redis agree", .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason))
struct DifferentialTests {
    @Test(arguments: [UInt64(20_261_122), 7, 99])
    func randomOperationsGiveIdenticalResults(seed: UInt64) async throws {
        let prefix = RedisTestServer.uniquePrefix() + "\(seed):"
        let memory = MemoryBroker()
        try await withRedisBroker { redis in
            var generator = CommandGenerator(seed: seed, prefix: prefix)
            for step in 0..<2_500 {
                let operation = generator.next()
                let expected = await Outcome(of: operation, on: memory)
                let actual = await Outcome(of: operation, on: redis)
                guard expected.matches(actual) else {
                    Issue.record("step \(step) (seed \(seed)): \(operation)\n memory: \(expected)\n redis:  \(actual)")
                    return
                }
            }
            // The final states agree too.
            for key in generator.allKeys {
                let listState = await Outcome(of: .batch([.range(queue: key, start: 0, stop: -1)], atomic: false), on: memory)
                let redisState = await Outcome(of: .batch([.range(queue: key, start: 0, stop: -1)], atomic: false), on: redis)
                #expect(listState.matches(redisState), "final state of \(key)")
            }
            _ = try await redis.delete(generator.allKeys)
        }
    }
}

/// One step of the walk: a single command, or a batch.
enum Operation: CustomStringConvertible {
    case single(BrokerCommand)
    case batch([BrokerCommand], atomic: Bool)

    var description: String {
        switch self {
        case .single(let command): return "\(command)"
        case .batch(let commands, let atomic): return "\(atomic ? "atomic" : "pipeline") \(commands)"
        }
    }
}

/// A result made comparable across backends: error codes rather than messages, and remaining
/// TTLs within a tolerance.
enum Outcome: Equatable, CustomStringConvertible {
    case replies([Reply])
    case failed(BrokerError.Code)

    init(of operation: Operation, on broker: some Broker) async {
        do {
            switch operation {
            case .single(let command): self = .replies([try await broker.execute(command)])
            case .batch(let commands, let atomic): self = .replies(try await broker.execute(commands, atomically: atomic))
            }
        } catch let error as BrokerError {
            self = .failed(error.code)
        } catch {
            self = .failed(.unexpectedReply)
        }
    }

    func matches(_ other: Outcome) -> Bool {
        switch (self, other) {
        case (.failed(let a), .failed(let b)): return a == b
        case (.replies(let a), .replies(let b)):
            return a.count == b.count && zip(a, b).allSatisfy(Self.same)
        default: return false
        }
    }

    private static func same(_ a: Reply, _ b: Reply) -> Bool {
        switch (a, b) {
        case (.error(let x), .error(let y)): return x.code == y.code
        case (.integer(let x), .integer(let y)) where x > 1_000 && y > 1_000:
            // A remaining TTL (the walk's TTLs are ≥ 20 s; other integers stay small) read a
            // little apart on the two backends.
            return abs(x - y) <= 2_000
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(same)
        default: return a == b
        }
    }

    var description: String {
        switch self {
        case .replies(let replies): return "\(replies)"
        case .failed(let code): return "throws \(code)"
        }
    }
}

/// SplitMix64: small, fast and the same on every platform, so a seed names one walk.
struct CommandGenerator {
    private var state: UInt64
    let lists: [String]
    let strings: [String]
    let counters: [String]
    var allKeys: [String] { lists + strings + counters }

    init(seed: UInt64, prefix: String) {
        state = seed
        lists = (0..<3).map { "\(prefix)list\($0)" }
        strings = (0..<3).map { "\(prefix)str\($0)" }
        counters = (0..<2).map { "\(prefix)count\($0)" }
    }

    private mutating func random() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func below(_ bound: Int) -> Int { Int(random() % UInt64(bound)) }
    private mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
    private mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    /// Mostly the key of the right kind, sometimes any key (wrong-type and missing-key cases).
    private mutating func key(_ preferred: [String]) -> String { chance(85) ? pick(preferred) : pick(allKeys) }

    private mutating func value() -> [UInt8] {
        switch below(6) {
        case 0: return []
        case 1: return Array(String(Int64(below(2_000)) - 1_000).utf8)
        case 2: return (0..<below(6)).map { _ in UInt8(truncatingIfNeeded: random()) }  // arbitrary bytes
        default: return Array(pick(["a", "b", "c", "job-1", "job-2", "ü"]).utf8)
        }
    }

    private mutating func end() -> QueueEnd { chance(50) ? .head : .tail }
    private mutating func index() -> Int { below(9) - 4 }

    mutating func command() -> BrokerCommand {
        switch below(19) {
        case 0, 1: return .push((0..<(1 + below(3))).map { _ in value() }, end: end(), queue: key(lists))
        case 2: return .pop(end: end(), queue: key(lists))
        case 3: return .move(source: key(lists), sourceEnd: end(), destination: key(lists), destinationEnd: end())
        case 4: return .remove(value: value(), count: below(5) - 2, queue: key(lists))
        case 5: return .length(queue: key(lists))
        case 6: return .range(queue: key(lists), start: index(), stop: index())
        case 7: return .trim(queue: key(lists), start: index(), stop: index())
        case 8: return .get(key: key(strings))
        case 9, 10:
            let expiry: Expiry = pick([.never, .keepExisting, .after(.seconds(20 + below(100)))])
            return .set(key: key(strings), value: value(), expiry: expiry,
                        condition: pick([.always, .always, .ifAbsent, .ifPresent]))
        case 11: return .delete(keys: (0..<(1 + below(3))).map { _ in pick(allKeys) })
        case 12: return .expire(key: pick(allKeys), after: chance(80) ? .seconds(20 + below(100)) : .milliseconds(-below(2)))
        case 13, 14: return .timeToLive(key: pick(allKeys))
        case 15, 16:
            let amount: Int64 = chance(3) ? .max - Int64(below(3)) : Int64(below(41)) - 20
            return .increment(key: key(counters), by: amount)
        case 17: return .publish(payload: value(), channel: "differential-nobody-listens")
        default: return .get(key: key(counters))
        }
    }

    mutating func next() -> Operation {
        switch below(10) {
        case 0: return .batch((0..<(1 + below(4))).map { _ in command() }, atomic: true)
        case 1: return .batch((0..<(1 + below(4))).map { _ in command() }, atomic: false)
        default: return .single(command())
        }
    }
}
