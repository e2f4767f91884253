import Broker
import MemoryBackend
import Testing

/// White-box checks of the memory backend: memory is returned, waiters leave no ghosts,
/// failures change nothing. The shared semantics are in the conformance suite.
@Suite struct MemoryBrokerInternalsTests {
    let clock = ManualClock()
    let broker: MemoryBroker

    init() {
        broker = MemoryBroker(clock: clock, sweepInterval: .seconds(1))
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    // MARK: TTL

    @Test func sweepRemovesExpiredKeysWithoutThemBeingRead() async throws {
        try await broker.set("a", to: "1", expiry: .after(.seconds(10)))
        try await broker.set("b", to: "2", expiry: .after(.seconds(20)))
        try await broker.set("keep", to: "3")
        try await broker.push("x", to: .head, of: "list")
        try await broker.expire("list", after: .seconds(5))
        clock.advance(by: .seconds(10))
        #expect(broker.storedKeyCount == 4)  // lazy expiry has not run: nobody looked
        #expect(broker.sweepExpired() == 2)  // "a" and "list"
        #expect(broker.storedKeyCount == 2)
        clock.advance(by: .seconds(10))
        #expect(broker.sweepExpired() == 1)
        #expect(try await broker.string("keep") == "3")
        #expect(broker.storedKeyCount == 1)
    }

    @Test func runSweepsOnItsOwnAndEndsOnCancellation() async throws {
        try await broker.set("a", to: "1", expiry: .after(.milliseconds(1500)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            #expect(try await eventually { clock.sleeperCount == 1 })
            clock.advance(by: .seconds(1))  // first sweep: not yet expired
            #expect(try await eventually { clock.sleeperCount == 1 })
            #expect(broker.storedKeyCount == 1)
            clock.advance(by: .seconds(1))
            #expect(try await eventually { broker.storedKeyCount == 0 })
            group.cancelAll()
            try await group.waitForAll()
        }
    }

    @Test func timeToLiveIsExactOnTheInjectedClock() async throws {
        try await broker.set("k", to: "v", expiry: .after(.seconds(10)))
        clock.advance(by: .milliseconds(2500))
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(7500))
        try await broker.set("k", to: "w", expiry: .keepExisting)
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(7500))
        try await broker.set("k", to: "x")
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(-1))
        try await broker.expire("k", after: .milliseconds(1))
        clock.advance(by: .milliseconds(1))
        #expect(try await broker.get("k") == nil)
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(-2))
        #expect(broker.storedKeyCount == 0)
    }

    @Test func emptiedListIsGoneAtOnceAndItsMemoryAtTheSweep() async throws {
        try await broker.push("a", to: .tail, of: "q")
        try await broker.expire("q", after: .seconds(5))
        #expect(try await broker.pop(from: .head, of: "q") == bytes("a"))
        #expect(try await broker.execute(.timeToLive(key: "q")) == .integer(-2))
        #expect(try await broker.length(of: "q") == 0)
        #expect(broker.storedKeyCount == 0)
        // A new list under the same name is a new key: no TTL, and a string may take the name.
        try await broker.push("b", to: .tail, of: "q")
        #expect(try await broker.execute(.timeToLive(key: "q")) == .integer(-1))
        _ = try await broker.pop(from: .head, of: "q")
        try await broker.set("q", to: "now a string")
        #expect(try await broker.string("q") == "now a string")
        try await broker.delete("q")
        try await broker.push("c", to: .tail, of: "other")
        _ = try await broker.pop(from: .head, of: "other")
        #expect(broker.tableSize == 1)
        broker.sweepExpired()
        #expect(broker.tableSize == 0)
        // A push onto an expired list starts a new one; a pop from one finds nothing.
        try await broker.push("old", to: .tail, of: "ttl")
        try await broker.expire("ttl", after: .seconds(1))
        try await broker.push("older", to: .tail, of: "ttl2")
        try await broker.expire("ttl2", after: .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(try await broker.push("new", to: .tail, of: "ttl") == 1)
        #expect(try await broker.range(of: "ttl") == [bytes("new")])
        #expect(try await broker.execute(.timeToLive(key: "ttl")) == .integer(-1))
        #expect(try await broker.pop(from: .head, of: "ttl2") == nil)
        #expect(broker.tableSize == 1)
    }

    @Test func nonPositiveExpireDeletes() async throws {
        try await broker.set("k", to: "v")
        #expect(try await broker.expire("k", after: .zero))
        #expect(try await broker.get("k") == nil)
        #expect(try await broker.expire("k", after: .seconds(1)) == false)
    }

    // MARK: Waiters

    @Test func cancelledWaiterLeavesNoGhost() async throws {
        let waiting = Task { try await broker.blockingPop(from: .tail, of: "q", timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 1 })
        waiting.cancel()
        #expect(try await waiting.value == nil)
        #expect(broker.waiterCount == 0)
        try await broker.push("job", to: .head, of: "q")
        #expect(try await broker.length(of: "q") == 1)  // not swallowed by the cancelled waiter
    }

    @Test func timedOutWaiterLeavesNoGhost() async throws {
        let waiting = Task { try await broker.blockingPop(from: .tail, of: "q", timeout: .seconds(5)) }
        #expect(try await eventually { broker.waiterCount == 1 && clock.sleeperCount == 1 })
        clock.advance(by: .seconds(4))
        #expect(broker.waiterCount == 1)
        clock.advance(by: .seconds(1))
        #expect(try await waiting.value == nil)
        #expect(broker.waiterCount == 0)
        #expect(clock.sleeperCount == 0)
        try await broker.push("job", to: .head, of: "q")
        #expect(try await broker.pop(from: .tail, of: "q") == bytes("job"))
    }

    @Test func servedWaiterCancelsItsTimer() async throws {
        let waiting = Task { try await broker.blockingPop(from: .tail, of: "q", timeout: .seconds(5)) }
        #expect(try await eventually { broker.waiterCount == 1 && clock.sleeperCount == 1 })
        try await broker.push("job", to: .head, of: "q")
        #expect(try await waiting.value == bytes("job"))
        #expect(clock.sleeperCount == 0)
        #expect(try await broker.length(of: "q") == 0)
    }

    @Test func waitersAreServedInArrivalOrderFromTheirEnd() async throws {
        let first = Task { try await broker.blockingPop(from: .tail, of: ["other", "q"], timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 1 })
        let second = Task { try await broker.blockingPop(from: .head, of: "q", timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 2 })
        // The whole push lands first, then waiters are served: Redis's order.
        #expect(try await broker.push([bytes("a"), bytes("b"), bytes("c")], to: .head, of: "q") == 3)
        #expect(try await first.value == PoppedValue(queue: "q", value: bytes("a")))
        #expect(try await second.value == bytes("c"))
        #expect(try await broker.range(of: "q") == [bytes("b")])
        #expect(broker.waiterCount == 0)
    }

    @Test func blockingMoveChainsIntoAWaiterOnItsDestination() async throws {
        let mover = Task { try await broker.blockingMove(from: "jobs", .tail, to: "processing", .head, timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 1 })
        let popper = Task { try await broker.blockingPop(from: .tail, of: "processing", timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 2 })
        try await broker.push("job-1", to: .head, of: "jobs")
        #expect(try await mover.value == bytes("job-1"))
        #expect(try await popper.value == bytes("job-1"))
        #expect(broker.storedKeyCount == 0)
    }

    @Test func blockingMoveOntoAStringFailsAndKeepsTheValue() async throws {
        try await broker.set("processing", to: "not a list")
        let mover = Task { try await broker.blockingMove(from: "jobs", .tail, to: "processing", .head, timeout: nil) }
        #expect(try await eventually { broker.waiterCount == 1 })
        try await broker.push("job-1", to: .head, of: "jobs")
        await #expect(throws: BrokerError.self) { try await mover.value }
        #expect(try await broker.range(of: "jobs") == [bytes("job-1")])
        #expect(try await broker.string("processing") == "not a list")
    }

    @Test func noValueIsLostAmongTimeoutsAndCancellations() async throws {
        let broker = MemoryBroker()  // the real clock: timeouts race pushes for real
        let values = 2_000
        let taken = try await withThrowingTaskGroup(of: [String].self) { group in
            for consumer in 0..<8 {
                group.addTask {
                    var mine: [String] = []
                    for round in 0..<400 {
                        // Mix forever-waits that get cancelled, short timeouts and moves.
                        if round % 3 == 0 {
                            let waiting = Task { try await broker.blockingPop(from: .tail, of: "q", timeout: nil) }
                            if round % 2 == 0 { waiting.cancel() }
                            // A value handed over before the cancellation landed is still kept.
                            if let value = try await Self.valueOrCancel(waiting) { mine.append(value) }
                        } else if consumer % 2 == 0 {
                            let value = try await broker.blockingPop(
                                from: .tail, of: ["q"], timeout: .microseconds(Int64(50 * (round % 7))))
                            if let value { mine.append(String(decoding: value.value, as: UTF8.self)) }
                        } else if let value = try await broker.blockingMove(
                            from: "q", .tail, to: "done", .head, timeout: .microseconds(200))
                        {
                            mine.append(String(decoding: value, as: UTF8.self))
                        }
                    }
                    return mine
                }
            }
            group.addTask {
                for index in 0..<values {
                    try await broker.push("\(index)", to: .head, of: "q")
                    if index % 16 == 0 { await Task.yield() }
                }
                return []
            }
            var all: [String] = []
            for try await batch in group { all += batch }
            return all
        }
        let left = try await broker.range(of: "q").map { String(decoding: $0, as: UTF8.self) }
        #expect(Set(taken).count == taken.count, "a value was taken twice")
        #expect(Set(taken + left) == Set((0..<values).map { "\($0)" }), "a value was lost")
        #expect(broker.waiterCount == 0)
    }

    private static func valueOrCancel(_ task: Task<[UInt8]?, any Error>) async throws -> String? {
        // Cancel a forever-wait that is still pending after a moment, so the case ends.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(for: .microseconds(300))
                task.cancel()
            }
            let value = try await task.value
            group.cancelAll()
            return value.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    // MARK: Failures change nothing

    @Test func wrongTypeChangesNothing() async throws {
        try await broker.set("s", to: "text", expiry: .after(.seconds(30)))
        try await broker.push("x", to: .tail, of: "l")
        for command: BrokerCommand in [
            .push([bytes("y")], end: .head, queue: "s"), .pop(end: .head, queue: "s"), .length(queue: "s"),
            .move(source: "s", sourceEnd: .head, destination: "l", destinationEnd: .head),
            .move(source: "l", sourceEnd: .head, destination: "s", destinationEnd: .head),
            .get(key: "l"), .increment(key: "l", by: 1), .trim(queue: "s", start: 0, stop: 0),
        ] {
            let error = await #expect(throws: BrokerError.self) { try await broker.execute(command) }
            #expect(error?.code == .wrongType, "\(command)")
        }
        #expect(try await broker.string("s") == "text")
        #expect(try await broker.execute(.timeToLive(key: "s")) == .integer(30_000))
        #expect(try await broker.range(of: "l") == [bytes("x")])
    }

    /// Pushes are undone by taking the pushed values back (not from a copy of the list), so
    /// mixing them with commands that are undone from a copy must still restore every value
    /// in its place.
    @Test func failedBatchTakesBackPushesAtBothEndsInOrder() async throws {
        let before = (0..<300).map { bytes("v\($0)") }
        try await broker.push(before, to: .tail, of: "long")
        let batch: [BrokerCommand] = [
            .push([bytes("h1"), bytes("h2")], end: .head, queue: "long"),
            .push([bytes("t1")], end: .tail, queue: "long"),
            .remove(value: bytes("v7"), count: 0, queue: "long"),  // undone from a copy
            .push([bytes("t2"), bytes("t3")], end: .tail, queue: "long"),
            .pop(end: .head, queue: "long"),
            .push([bytes("new")], end: .head, queue: "fresh-list"),
            .set(key: "s", value: bytes("x"), expiry: .never, condition: .always),
            .push([bytes("boom")], end: .head, queue: "s"),  // fails: wrong type
        ]
        await #expect(throws: BrokerError.self) { try await broker.execute(batch, atomically: true) }
        #expect(try await broker.range(of: "long") == before)
        #expect(try await broker.length(of: "fresh-list") == 0)
        #expect(try await broker.get("s") == nil)
        // A good batch of the same shape applies fully.
        let good = Array(batch.dropLast())
        _ = try await broker.execute(good, atomically: true)
        #expect(try await broker.length(of: "long") == 300 + 2 + 1 - 1 + 2 - 1)
        #expect(try await broker.range(of: "long", from: 0, through: 0) == [bytes("h1")])
        #expect(try await broker.range(of: "long", from: -1, through: -1) == [bytes("t3")])
    }

    @Test func removingOneElementInPlaceKeepsTheRest() async throws {
        let items = ["a", "x", "b", "x", "c"].map(bytes)
        try await broker.push(items, to: .tail, of: "q")
        #expect(try await broker.remove(bytes("x"), count: 1, from: "q") == 1)  // the first from the head
        #expect(try await broker.range(of: "q") == ["a", "b", "x", "c"].map(bytes))
        try await broker.push(bytes("x"), to: .head, of: "q")
        #expect(try await broker.remove(bytes("x"), count: -1, from: "q") == 1)  // the first from the tail
        #expect(try await broker.range(of: "q") == ["x", "a", "b", "c"].map(bytes))
        #expect(try await broker.remove(bytes("absent"), count: 1, from: "q") == 0)
        // Values of one length and one last byte are still told apart; an empty value matches only itself.
        try await broker.push([bytes("id-17"), bytes("id-27"), []], to: .tail, of: "ids")
        #expect(try await broker.remove(bytes("id-27"), count: 1, from: "ids") == 1)
        #expect(try await broker.remove(bytes("id-37"), count: 1, from: "ids") == 0)
        #expect(try await broker.remove([], count: -1, from: "ids") == 1)
        #expect(try await broker.range(of: "ids") == [bytes("id-17")])
        // Undone with the batch it was part of.
        let batch: [BrokerCommand] = [
            .remove(value: bytes("b"), count: 1, queue: "q"),
            .set(key: "s", value: bytes("1"), expiry: .never, condition: .always),
            .push([bytes("boom")], end: .head, queue: "s"),  // fails: wrong type
        ]
        await #expect(throws: BrokerError.self) { try await broker.execute(batch, atomically: true) }
        #expect(try await broker.range(of: "q") == ["x", "a", "b", "c"].map(bytes))
        // The last element removed: the list no longer exists.
        try await broker.push(bytes("only"), to: .head, of: "single")
        #expect(try await broker.remove(bytes("only"), count: -1, from: "single") == 1)
        #expect(try await broker.length(of: "single") == 0)
        #expect(try await broker.execute(.timeToLive(key: "single")) == .integer(-2))
    }

    @Test func setReplacesTimeToLiveAndExpiredKeysAsRedisDoes() async throws {
        try await broker.set("k", to: "1", expiry: .after(.seconds(10)))
        try await broker.set("k", to: "2")  // a plain SET drops the TTL
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(-1))
        try await broker.set("k", to: "3", expiry: .after(.seconds(5)))
        clock.advance(by: .seconds(5))
        // Expired: SET NX sees no key, SET XX does nothing.
        #expect(try await broker.execute(.set(key: "k", value: bytes("4"), expiry: .never, condition: .ifPresent)) == .null)
        #expect(try await broker.execute(.set(key: "k", value: bytes("5"), expiry: .never, condition: .ifAbsent)) == .ok)
        #expect(try await broker.string("k") == "5")
        // KEEPTTL keeps the deadline of a live key; the sweep still finds it.
        try await broker.set("t", to: "1", expiry: .after(.seconds(3)))
        _ = try await broker.execute(.set(key: "t", value: bytes("2"), expiry: .keepExisting, condition: .always))
        clock.advance(by: .seconds(3))
        #expect(broker.sweepExpired() == 1)
        #expect(try await broker.get("t") == nil)
    }

    @Test func plainSetReplacesExpiredKeysAndEmptiedListsInOneStep() async throws {
        try await broker.set("k", to: "1", expiry: .after(.seconds(5)))
        clock.advance(by: .seconds(5))
        try await broker.set("k", to: "2", expiry: .after(.seconds(5)))  // over the expired one
        #expect(try await broker.execute(.timeToLive(key: "k")) == .integer(5000))
        #expect(broker.storedKeyCount == 1)
        // An emptied list left in place for the sweep: the string takes its name and survives it.
        try await broker.push("x", to: .tail, of: "q")
        _ = try await broker.pop(from: .head, of: "q")
        try await broker.set("q", to: "text")
        broker.sweepExpired()
        #expect(try await broker.string("q") == "text")
        // Inside a failing batch, the replaced value comes back.
        await #expect(throws: BrokerError.self) {
            _ = try await broker.execute(
                [.set(key: "q", value: bytes("lost"), expiry: .never, condition: .always), .push([bytes("v")], end: .head, queue: "k")],
                atomically: true)
        }
        #expect(try await broker.string("q") == "text")
        #expect(try await broker.execute(.timeToLive(key: "q")) == .integer(-1))
    }

    @Test func moveLooksUpEachListOnceAndKeepsEveryCase() async throws {
        // Onto a missing destination: the list is made.
        try await broker.push([bytes("a"), bytes("b")], to: .tail, of: "src")
        #expect(try await broker.move(from: "src", .head, to: "dst", .tail) == bytes("a"))
        #expect(try await broker.range(of: "dst") == [bytes("a")])
        // Emptying the source while the destination is an emptied list kept in place.
        _ = try await broker.pop(from: .head, of: "dst")
        #expect(try await broker.move(from: "src", .head, to: "dst", .head) == bytes("b"))
        #expect(try await broker.range(of: "dst") == [bytes("b")])
        #expect(try await broker.length(of: "src") == 0)
        #expect(try await broker.move(from: "src", .head, to: "dst", .head) == nil)
        // Onto an expired destination: it is gone, and the source's value lands in a new list.
        try await broker.push([bytes("c"), bytes("d")], to: .tail, of: "src")
        try await broker.expire("dst", after: .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(try await broker.move(from: "src", .tail, to: "dst", .head) == bytes("d"))
        #expect(try await broker.range(of: "dst") == [bytes("d")])
        #expect(try await broker.range(of: "src") == [bytes("c")])
        #expect(try await broker.execute(.timeToLive(key: "dst")) == .integer(-1))
        // A rotation onto itself, and a string destination refused with nothing moved.
        try await broker.push("e", to: .tail, of: "src")
        #expect(try await broker.move(from: "src", .head, to: "src", .tail) == bytes("c"))
        #expect(try await broker.range(of: "src") == [bytes("e"), bytes("c")])
        try await broker.set("text", to: "t")
        await #expect(throws: BrokerError.self) { _ = try await broker.move(from: "src", .head, to: "text", .tail) }
        #expect(try await broker.range(of: "src") == [bytes("e"), bytes("c")])
        // An expired source has nothing to move.
        try await broker.expire("src", after: .seconds(1))
        clock.advance(by: .seconds(1))
        #expect(try await broker.move(from: "src", .head, to: "dst", .tail) == nil)
        #expect(try await broker.range(of: "dst") == [bytes("d")])
    }

    @Test func failedAtomicBatchIsRolledBack() async throws {
        try await broker.push("old", to: .tail, of: "q")
        try await broker.set("n", to: "5", expiry: .after(.seconds(9)))
        let batch: [BrokerCommand] = [
            .push([bytes("new")], end: .tail, queue: "q"),
            .pop(end: .head, queue: "q"),
            .increment(key: "n", by: 2),
            .expire(key: "n", after: .seconds(100)),
            .set(key: "fresh", value: bytes("1"), expiry: .never, condition: .always),
            .delete(keys: ["q"]),
            .publish(payload: bytes("hi"), channel: "c"),
            .increment(key: "fresh", by: .max),  // fails: overflow
        ]
        try await broker.subscribe(to: "c") { subscription in
            await #expect(throws: BrokerError.self) { try await broker.execute(batch, atomically: true) }
            #expect(subscription.bufferedCount == 0)
        }
        #expect(try await broker.range(of: "q") == [bytes("old")])
        #expect(try await broker.string("n") == "5")
        #expect(try await broker.execute(.timeToLive(key: "n")) == .integer(9000))
        #expect(try await broker.get("fresh") == nil)
        // The same batch as a pipeline applies all but the failing command.
        let replies = try await broker.execute(batch, atomically: false)
        #expect(replies.last.map { if case .error = $0 { true } else { false } } == true)
        #expect(try await broker.string("fresh") == "1")
    }

    @Test func integersParseAsRedisDoes() async throws {
        for bad in ["", "+1", "01", " 1", "1 ", "-0", "1.0", "9223372036854775808", "abc", "-"] {
            try await broker.set("k", to: bad)
            let error = await #expect(throws: BrokerError.self) { try await broker.increment("k") }
            #expect(error?.code == .notAnInteger, "\(bad)")
            #expect(try await broker.string("k") == bad)
        }
        try await broker.set("k", to: "-9223372036854775807")
        #expect(try await broker.increment("k", by: -1) == .min)
        await #expect(throws: BrokerError.self) { try await broker.increment("k", by: -1) }
        #expect(try await broker.increment("missing", by: 0) == 0)
    }

    @Test func rangesNormaliseAsRedisDoes() async throws {
        try await broker.push((0..<5).map { bytes("\($0)") }, to: .tail, of: "l")
        let cases: [(Int, Int, String)] = [
            (0, -1, "01234"), (-100, 100, "01234"), (1, 2, "12"), (-2, -1, "34"), (3, 1, ""),
            (5, 10, ""), (-1, -2, ""), (0, 0, "0"), (-6, 0, "0"), (4, 4, "4"),
        ]
        for (start, stop, expected) in cases {
            let values = try await broker.range(of: "l", from: start, through: stop)
            #expect(values.map { String(decoding: $0, as: UTF8.self) }.joined() == expected, "\(start) \(stop)")
        }
        try await broker.trim("l", from: 1, through: -2)
        #expect(try await broker.range(of: "l").count == 3)
        try await broker.trim("l", from: 2, through: 1)
        #expect(broker.storedKeyCount == 0)  // an emptied list disappears
    }

    // MARK: Transactions and subscriptions

    @Test func watchSeesTheCallersOwnWritesAndExpiry() async throws {
        try await broker.set("k", to: "1", expiry: .after(.seconds(5)))
        let written = try await broker.attemptTransaction(watching: ["k"]) {
            try await broker.set("k", to: "2", expiry: .keepExisting)
            return Transaction(commands: [.set(key: "k", value: bytes("3"), expiry: .never, condition: .always)])
        }
        #expect(isConflicted(written))
        #expect(try await broker.string("k") == "2")
        let expired = try await broker.attemptTransaction(watching: ["k"]) {
            clock.advance(by: .seconds(5))
            return Transaction(commands: [.set(key: "other", value: bytes("x"), expiry: .never, condition: .always)])
        }
        #expect(isConflicted(expired))
        #expect(try await broker.get("other") == nil)
        let clean = try await broker.attemptTransaction(watching: ["k"]) {
            Transaction(commands: [.set(key: "k", value: bytes("4"), expiry: .never, condition: .always)])
        }
        #expect(!isConflicted(clean))
        #expect(try await broker.string("k") == "4")
        struct Failure: Error {}
        await #expect(throws: Failure.self) {
            _ = try await broker.attemptTransaction(watching: ["k"]) { () async throws -> Transaction<Void> in
                throw Failure()
            }
        }
        #expect(broker.watchCount == 0)
    }

    private func isConflicted<Value>(_ attempt: TransactionAttempt<Value>) -> Bool {
        if case .conflicted = attempt { return true }
        return false
    }

    @Test func subscriptionIsRemovedWhenBodyThrows() async throws {
        struct Failure: Error {}
        await #expect(throws: Failure.self) {
            try await broker.subscribe(to: ["a", "a"], patterns: ["a*"], buffering: .default) { _ in
                #expect(broker.subscriberCount == 2)
                #expect(try await broker.publish("m", to: "a") == 2)  // channel and pattern
                throw Failure()
            }
        }
        #expect(broker.subscriberCount == 0)
        #expect(try await broker.publish("m", to: "a") == 0)
    }
}
