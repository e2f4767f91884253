import Broker
import Foundation
import Testing

@Suite("Timestamp and job ids")
struct TimestampTests {
    @Test("formats known instants as ISO-8601 UTC with milliseconds")
    func knownInstants() {
        #expect(Timestamp(milliseconds: 0).iso8601 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 1_731_304_200_000).iso8601 == "2024-11-11T05:50:00.000Z")
        #expect(Timestamp(milliseconds: 1_762_857_000_000).iso8601 == "2025-11-11T10:30:00.000Z")
        #expect(Timestamp(milliseconds: 951_782_400_123).iso8601 == "2000-02-29T00:00:00.123Z")
        #expect(Timestamp(milliseconds: -1).iso8601 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp(milliseconds: 253_402_300_799_999).iso8601 == "9999-12-31T23:59:59.999Z")
    }

    @Test("writes the same text into bytes, after what they hold")
    func writesIntoBytes() {
        for milliseconds: Int64 in [0, -1, 951_782_400_123, 1_762_857_000_000, 253_402_300_799_999] {
            var bytes = Array("at ".utf8)
            Timestamp(milliseconds: milliseconds).writeISO8601(into: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "at " + Timestamp(milliseconds: milliseconds).iso8601)
        }
    }

    @Test("agrees with Foundation's ISO-8601 formatter and parses back", arguments: 0..<8)
    func agreesWithFoundation(seed: Int) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SplitMix(seed: UInt64(seed))
        for _ in 0..<500 {
            let milliseconds = Int64(generator.next() % 4_102_444_800_000)  // 1970 … 2100
            let stamp = Timestamp(milliseconds: milliseconds)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
            #expect(stamp.iso8601 == expected)
            #expect(Timestamp(iso8601: stamp.iso8601) == stamp)
        }
    }

    @Test("parses what JavaScript's toISOString writes, refuses the rest")
    func parsing() {
        #expect(Timestamp(iso8601: "2025-11-11T10:30:45.000Z")?.milliseconds == 1_762_857_045_000)
        #expect(Timestamp(iso8601: "2025-11-11T10:30:45Z")?.milliseconds == 1_762_857_045_000)
        #expect(Timestamp(iso8601: "2025-11-11T10:30:45.5Z")?.milliseconds == 1_762_857_045_500)
        #expect(Timestamp(iso8601: "2025-11-11T10:30:45.123456Z")?.milliseconds == 1_762_857_045_123)
        for bad in ["", "2025-11-11", "2025-11-11T10:30:45+01:00", "2025-13-11T10:30:45Z", "2025-11-11T10:30:45.Z", "yesterday"] {
            #expect(Timestamp(iso8601: bad) == nil, "\(bad)")
        }
    }

    @Test("now is close to Foundation's clock")
    func now() {
        let ours = Timestamp.now().milliseconds
        let theirs = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(abs(ours - theirs) < 5_000)
    }

    @Test("job ids: <ms>-<10 base-36 chars>, unique, ordered by creation time")
    func jobIds() {
        let time = Timestamp(milliseconds: 1_731_304_200_000)
        var ids = Set<String>()
        for _ in 0..<10_000 { ids.insert(JobID.make(at: time)) }
        #expect(ids.count == 10_000)
        for id in ids.prefix(50) {
            let parts = id.split(separator: "-")
            #expect(parts.count == 2 && parts[0] == "1731304200000" && parts[1].count == JobID.randomLength)
            #expect(parts[1].allSatisfy { $0.isNumber || ("a"..."z").contains(String($0)) })
            #expect(JobID.creationTime(of: id) == time)
        }
        #expect(JobID.make(at: Timestamp(milliseconds: 1_731_304_200_001)) > JobID.make(at: time))
        #expect(JobID.creationTime(of: "nonsense") == nil)
        #expect(JobID.isAcceptable("1731304200000-a7f3e2k"))
        #expect(!JobID.isAcceptable("") && !JobID.isAcceptable("a b") && !JobID.isAcceptable(String(repeating: "x", count: 129)))
    }

    @Test("job ids in log lines: as they are when acceptable, else escaped and cut")
    func loggableJobIds() {
        #expect(JobID.loggable("1731304200000-a7f3e2k") == "1731304200000-a7f3e2k")
        // A newline would start a forged log line; it is escaped inside quotes instead.
        #expect(JobID.loggable("a\nERROR forged") == #""a\nERROR forged""#)
        #expect(JobID.loggable("") == #""""#)
        let huge = JobID.loggable(String(repeating: "x", count: 1_000_000))
        #expect(huge.hasPrefix("\"" + String(repeating: "x", count: 64) + "\"…"))
        #expect(huge.hasSuffix("(1000000 bytes)") && huge.count < 100)
    }

    @Test("event ids: decimal, increasing, seeded above every earlier sequence")
    func eventIds() {
        #expect(EventID("42") == EventID(42))
        #expect(EventID("") == nil && EventID("-1") == nil && EventID("1e3") == nil && EventID("99999999999999999999") == nil)
        let now = Timestamp(milliseconds: 1_731_304_200_000)
        let seed = EventID.next(after: nil, now: now)
        #expect(seed == EventID(1_731_304_200_000_000))
        #expect(EventID.next(after: seed, now: now) == EventID(seed.value + 1))
        // A sequence restarted a day later begins above a busy earlier one.
        let later = EventID.next(after: nil, now: Timestamp(milliseconds: now.milliseconds + 86_400_000))
        #expect(later > EventID(seed.value + 1_000_000_000))
    }
}

/// A small deterministic generator for reproducible random tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
