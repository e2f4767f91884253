@testable import Broker
import BrokerTesting
import Logging
import MemoryBackend
import Synchronization
import Testing

@Suite("Log throttle")
struct LogThrottleTests {
    @Test func atMostTheLimitPerWindowThenTheHeldBackCountWithTheNextLine() {
        let throttle = LogThrottle(limit: 3, interval: .seconds(10))
        let start = ContinuousClock.now
        #expect((0..<3).map { _ in throttle.admit("bad", now: start) } == [0, 0, 0])
        #expect(throttle.admit("bad", now: start + .seconds(1)) == nil)
        #expect(throttle.admit("bad", now: start + .seconds(9)) == nil)
        // Another kind has a window of its own.
        #expect(throttle.admit("other", now: start + .seconds(9)) == 0)
        // The next window lets lines through again; the first says how many were held back.
        #expect(throttle.admit("bad", now: start + .seconds(10)) == 2)
        #expect(throttle.admit("bad", now: start + .seconds(10)) == 0)
    }

    @Test func aFloodOfMalformedStatusesIsCountedInFullButLoggedInPart() {
        let lines = LoggedLines()
        var logger = Logger(label: "throttle-test") { _ in lines }
        logger.logLevel = .info
        let store = JobStore(broker: MemoryBroker(), logger: logger)
        for _ in 0..<1_000 { _ = store.receive(statusMessage: Array("not json\n".utf8)) }
        #expect(store.stats.withLock { $0.statusReceived } == 1_000)
        #expect(lines.messages.count == store.logThrottle.limit)
        #expect(lines.messages.allSatisfy { $0 == "dropped status message" })
    }
}
