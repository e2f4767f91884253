import Broker
@testable import MemoryBackend
import Testing

extension ExpiryIndex {
    mutating func add(_ key: String, deadline: Duration) {
        add(key, second: Self.second(containing: deadline))
    }
}

@Suite("Expiry index: keys by the second their deadline falls in")
struct ExpiryIndexTests {
    @Test func keysComeDueOnceTheirSecondHasPassed() {
        var index = ExpiryIndex()
        index.add("a", deadline: .milliseconds(1500))  // second 2
        index.add("b", deadline: .seconds(2))  // second 2
        index.add("c", deadline: .milliseconds(2001))  // second 3
        #expect(index.takeDue(at: .milliseconds(1999), limit: 10) == nil)
        #expect(!index.hasDue(at: .milliseconds(1999)))
        #expect(index.hasDue(at: .seconds(2)))
        let due = index.takeDue(at: .seconds(2), limit: 10)
        #expect(due?.second == 2 && due.map { Set($0.keys) } == ["a", "b"])
        #expect(index.takeDue(at: .milliseconds(2999), limit: 10) == nil)
        #expect(index.takeDue(at: .seconds(3), limit: 10)?.keys == ["c"])
        #expect(index.count == 0)
    }

    @Test func secondsAddedOutOfOrderAllComeDueSoonestFirst() {
        var index = ExpiryIndex()
        // Alternating TTLs (a job's 30 s lease and 24 h record) switch the current second.
        for round in 0..<3 {
            index.add("lease\(round)", deadline: .seconds(30))
            index.add("record\(round)", deadline: .seconds(86_400))
        }
        index.add("early", deadline: .seconds(5))
        #expect(index.count == 7)
        #expect(index.takeDue(at: .seconds(100), limit: 100)?.keys == ["early"])
        #expect(index.takeDue(at: .seconds(100), limit: 100).map { Set($0.keys) } == ["lease0", "lease1", "lease2"])
        #expect(index.takeDue(at: .seconds(100), limit: 100) == nil)
        #expect(index.takeDue(at: .seconds(86_400), limit: 100)?.keys.count == 3)
    }

    @Test func aLargeSecondIsTakenInPiecesOfTheLimit() {
        var index = ExpiryIndex()
        for key in 0..<2500 { index.add("k\(key)", deadline: .seconds(1)) }
        var taken: [String] = []
        while let (_, keys) = index.takeDue(at: .seconds(1), limit: 1000) {
            #expect(keys.count <= 1000)
            taken += keys
        }
        #expect(Set(taken).count == 2500)
        #expect(!index.hasDue(at: .seconds(1)))
    }
}

@Suite("Expiry sweep on the memory broker")
struct ExpirySweepTests {
    let clock = ManualClock()
    let broker: MemoryBroker

    init() { broker = MemoryBroker(clock: clock) }

    @Test func aBurstOfExpiriesIsSweptWholeAcrossSeveralLockHolds() async throws {
        for key in 0..<5000 { try await broker.set("record:\(key)", to: "v", expiry: .after(.seconds(60))) }
        try await broker.set("other", to: "v", expiry: .after(.seconds(120)))
        clock.advance(by: .seconds(60))
        #expect(broker.sweepExpired() == 5000)
        #expect(broker.storedKeyCount == 1)
    }

    @Test func keysChangedSinceTheirDeadlineWasSetAreJudgedByTheirDeadlineNow() async throws {
        try await broker.set("deleted", to: "v", expiry: .after(.seconds(10)))
        try await broker.delete("deleted")
        try await broker.set("persisted", to: "v", expiry: .after(.seconds(10)))
        try await broker.set("persisted", to: "w")  // a plain SET drops the TTL
        try await broker.set("extended", to: "v", expiry: .after(.seconds(10)))
        try await broker.expire("extended", after: .seconds(30))
        try await broker.set("renewed", to: "v", expiry: .after(.seconds(10)))
        try await broker.set("renewed", to: "w", expiry: .after(.seconds(20)))
        try await broker.set("recreated", to: "v", expiry: .after(.seconds(10)))
        try await broker.delete("recreated")
        try await broker.push("x", to: .tail, of: "recreated")
        clock.advance(by: .seconds(10))
        #expect(broker.sweepExpired() == 0)
        #expect(broker.storedKeyCount == 4)
        clock.advance(by: .seconds(10))
        #expect(broker.sweepExpired() == 1)  // "renewed"
        clock.advance(by: .seconds(10))
        #expect(broker.sweepExpired() == 1)  // "extended"
        #expect(try await broker.string("persisted") == "w")
        #expect(try await broker.length(of: "recreated") == 1)
        #expect(broker.storedKeyCount == 2)
    }

    @Test func aTimeToLiveRenewedOnEveryWriteKeepsOneListing() async throws {
        // An event log's TTL is renewed on every append, a sequence key is set with a TTL on
        // every event: neither may grow the index with each write.
        try await broker.push("e", to: .tail, of: "log")
        for _ in 0..<1000 {
            try await broker.expire("log", after: .seconds(60))
            try await broker.set("seq", to: "n", expiry: .after(.seconds(60)))
            _ = try await broker.execute(.set(key: "seq2", value: [1], expiry: .after(.seconds(60)), condition: .ifPresent))
            clock.advance(by: .milliseconds(10))
        }
        #expect(broker.expiryListingCount == 2)  // "log" and "seq" ("seq2" never existed)
        // Found alive at its first second, each is listed again under its deadline's, and goes then.
        clock.advance(by: .seconds(55))
        #expect(broker.sweepExpired() == 0)
        #expect(broker.expiryListingCount == 2)
        clock.advance(by: .seconds(6))
        #expect(broker.sweepExpired() == 2)
        #expect(broker.storedKeyCount == 0)
        #expect(broker.expiryListingCount == 0)
    }

    @Test func aDeadlineBroughtForwardIsSweptThen() async throws {
        try await broker.set("k", to: "v", expiry: .after(.seconds(100)))
        try await broker.expire("k", after: .seconds(5))
        try await broker.set("n", to: "1", expiry: .after(.seconds(100)))
        try await broker.set("n", to: "2", expiry: .after(.seconds(5)))  // an unconditional SET
        clock.advance(by: .seconds(5))
        #expect(broker.sweepExpired() == 2)
        #expect(broker.storedKeyCount == 0)
    }

    @Test func aKeyThatLostItsTimeToLiveAndGotOneAgainIsSwept() async throws {
        try await broker.push("x", to: .tail, of: "q")
        try await broker.expire("q", after: .seconds(5))
        #expect(try await broker.pop(from: .head, of: "q") == Array("x".utf8))  // emptied: gone, TTL too
        try await broker.push("y", to: .tail, of: "q")  // a new list under the name, persistent
        clock.advance(by: .seconds(5))
        #expect(broker.sweepExpired() == 0)  // the old listing came due with nothing to expire
        #expect(try await broker.expire("q", after: .seconds(10)))
        try await broker.set("p", to: "v", expiry: .after(.seconds(5)))
        try await broker.set("p", to: "w")  // persistent
        clock.advance(by: .seconds(5))
        #expect(broker.sweepExpired() == 0)
        try await broker.expire("p", after: .seconds(5))
        clock.advance(by: .seconds(5))
        #expect(broker.sweepExpired() == 2)
        #expect(broker.storedKeyCount == 0)
    }

    @Test func keysDeletedAndMadeAgainDoNotPileUpListings() async throws {
        for round in 0..<100 {
            try await broker.set("cache", to: "\(round)", expiry: .after(.seconds(30)))
            try await broker.delete("cache")
            clock.advance(by: .seconds(1))
            broker.sweepExpired()
        }
        try await broker.set("cache", to: "last", expiry: .after(.seconds(30)))
        // The earlier rounds' listings come due while the key lives again: they are stale,
        // dropped, not carried forward.
        clock.advance(by: .seconds(29))
        #expect(broker.sweepExpired() == 0)
        #expect(broker.expiryListingCount == 1)
        clock.advance(by: .seconds(2))
        #expect(broker.sweepExpired() == 1)
        #expect(broker.expiryListingCount == 0)
    }
}

@Suite("Memory backend entries")
struct EntryLayoutTests {
    @Test func anEntryStaysThirtyTwoBytesWithItsListing() {
        // One per key: the expiry listing must not grow the table.
        #expect(MemoryLayout<Entry>.stride == 32)
        var entry = Entry(value: .string([]), deadline: .seconds(1), listedSecond: 5)
        #expect(entry.listedSecond == 5)
        entry.listedSecond = Int64(Int32.max) + 1  // over 68 years: not kept
        #expect(entry.listedSecond == nil)
    }
}
