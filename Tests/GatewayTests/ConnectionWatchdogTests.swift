@testable import Gateway
import Testing

@Suite("Connection watchdog: WebSocket pings")
struct ConnectionWatchdogTests {
    let start = ContinuousClock.now
    let interval = Duration.seconds(1)
    let timeout = Duration.seconds(4)

    /// A connection's progress whose pongs are watched (as once its WebSocket handler is added).
    private func watchedProgress() -> ConnectionWatchdog.Progress {
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        progress.pongsWatched()
        return progress
    }

    private func due(_ progress: ConnectionWatchdog.Progress, at offset: Duration) -> ConnectionWatchdog.PingAction {
        progress.pingDue(now: start + offset, every: interval, timeout: timeout)
    }

    @Test func aPingIsSentEachIntervalWhileAnswered() {
        let progress = watchedProgress()
        #expect(due(progress, at: .milliseconds(900)) == .none)
        #expect(due(progress, at: .seconds(1)) == .send)
        progress.pongReceived()
        #expect(due(progress, at: .seconds(2)) == .send)
    }

    @Test func anUnansweredPingTimesOutAfterTheTimeoutNotTheInterval() {
        let progress = watchedProgress()
        #expect(due(progress, at: .seconds(1)) == .send)
        // No second ping while the first waits, and no timeout before its time.
        #expect(due(progress, at: .seconds(3)) == .none)
        #expect(due(progress, at: .seconds(5)) == .timeout)
    }

    @Test func aLatePongStillCountsBeforeTheTimeout() {
        let progress = watchedProgress()
        #expect(due(progress, at: .seconds(1)) == .send)
        #expect(due(progress, at: .seconds(3)) == .none)
        progress.pongReceived()
        #expect(due(progress, at: .seconds(3)) == .send)
    }

    @Test func pingsDoNotTimeOutBeforePongsAreWatched() {
        let progress = ConnectionWatchdog.Progress(id: 1, now: start)
        #expect(due(progress, at: .seconds(1)) == .send)
        #expect(due(progress, at: .seconds(6)) == .send)
    }
}
