@testable import Broker
import Testing

@Suite("Job durations")
struct JobDurationsTests {
    @Test("observations land in the first bucket that holds them; buckets read cumulative")
    func buckets() {
        var durations = JobDurations()
        for seconds in [0.0, 0.01, 0.011, 3, 7200, -1] { durations.observe(.done, seconds: seconds) }
        durations.observe(.error, seconds: 0.2)
        durations.observe(.processing, seconds: 1)  // not a final status: ignored
        let bounds = JobDurations.bucketBounds
        let done = durations.done
        #expect(done.count == 6 && done.sumSeconds == 0.01 + 0.011 + 3 + 7200)
        #expect(done.buckets[bounds.firstIndex(of: 0.01)!] == 3)  // 0, 0.01 and -1 (clamped to 0)
        #expect(done.buckets[bounds.firstIndex(of: 0.05)!] == 1)
        #expect(done.buckets[bounds.firstIndex(of: 5)!] == 1)
        #expect(done.buckets.last == 1)  // +Inf
        #expect(done.cumulative.last == 6 && done.cumulative == done.cumulative.sorted())
        #expect(durations.error.count == 1 && durations.error.buckets[bounds.firstIndex(of: 0.25)!] == 1)
    }
}
