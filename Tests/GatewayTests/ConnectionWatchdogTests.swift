@testable import Gateway
import Testing

@Suite("Connection watchdog: WebSocket pings")
struct ConnectionWatchdogTests {
    @Test func aPingIsSentEachIntervalWhileAnswered() {
        let start = ContinuousClock.now
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        progress.pongsWatched()
        let interval = Duration.seconds(1), timeout = Duration.seconds(4)
        #expect(progress.pingDue(now: start + .milliseconds(900), every: interval, timeout: timeout) == .none)
        #expect(progress.pingDue(now: start + .seconds(1), every: interval, timeout: timeout) == .send)
        progress.pongReceived()
        #expect(progress.pingDue(now: start + .seconds(2), every: interval, timeout: timeout) == .send)
    }

    @Test func anUnansweredPingTimesOutAfterTheTimeoutNotTheInterval() {
        let start = ContinuousClock.now
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        progress.pongsWatched()
        let interval = Duration.seconds(1), timeout = Duration.seconds(4)
        #expect(progress.pingDue(now: start + .seconds(1), every: interval, timeout: timeout) == .send)
        // No second ping while the first waits, and no timeout before its time.
        #expect(progress.pingDue(now: start + .seconds(3), every: interval, timeout: timeout) == .none)
        #expect(progress.pingDue(now: start + .seconds(5), every: interval, timeout: timeout) == .timeout)
    }

    @Test func aLatePongStillCountsBeforeTheTimeout() {
        let start = ContinuousClock.now
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        progress.pongsWatched()
        let interval = Duration.seconds(1), timeout = Duration.seconds(4)
        #expect(progress.pingDue(now: start + .seconds(1), every: interval, timeout: timeout) == .send)
        #expect(progress.pingDue(now: start + .seconds(3), every: interval, timeout: timeout) == .none)
        progress.pongReceived()
        #expect(progress.pingDue(now: start + .seconds(3), every: interval, timeout: timeout) == .send)
    }

    @Test func pingsDoNotTimeOutBeforePongsAreWatched() {
        let start = ContinuousClock.now
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        let interval = Duration.seconds(1)
        #expect(progress.pingDue(now: start + .seconds(1), every: interval, timeout: interval) == .send)
        #expect(progress.pingDue(now: start + .seconds(2), every: interval, timeout: interval) == .send)
    }
}
