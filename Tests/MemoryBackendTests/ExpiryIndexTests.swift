import Broker
@testable import MemoryBackend
import Testing

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
        #expect(index.takeDue(at: .seconds(2), limit: 10).map(Set.init) == ["a", "b"])
        #expect(index.takeDue(at: .milliseconds(2999), limit: 10) == nil)
        #expect(index.takeDue(at: .seconds(3), limit: 10) == ["c"])
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
        #expect(index.takeDue(at: .seconds(100), limit: 100) == ["early"])
        #expect(index.takeDue(at: .seconds(100), limit: 100).map(Set.init) == ["lease0", "lease1", "lease2"])
        #expect(index.takeDue(at: .seconds(100), limit: 100) == nil)
        #expect(index.takeDue(at: .seconds(86_400), limit: 100)?.count == 3)
    }

    @Test func aLargeSecondIsTakenInPiecesOfTheLimit() {
        var index = ExpiryIndex()
        for key in 0..<2500 { index.add("k\(key)", deadline: .seconds(1)) }
        var taken: [String] = []
        while let keys = index.takeDue(at: .seconds(1), limit: 1000) {
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
}
