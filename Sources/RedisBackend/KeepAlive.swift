/// When an idle connection sends a `PING`, so that a server configured with `timeout N`
/// (which closes clients that sent no command for N seconds) keeps it open.
///
/// TCP keepalive (which hiredis turns on) does not help against that: Redis counts only
/// commands. Production clients send a `PING` on an idle connection for the same reason
/// (redis-py's `health_check_interval`, ioredis's connection pings).
///
/// A connection is busy, and sends no `PING`, while a request is in flight or waiting to be
/// written, or when a caller sent one since the last look: a connection in steady use never
/// pings, and one blocked in `BLPOP`/`BLMOVE` neither (Redis never times out a blocked
/// client, and a `PING` would only queue behind the blocked command).
///
/// A plain state machine: ``RedisConnection``'s I/O thread asks it once per turn of its poll
/// loop (at least every 100 ms) and sends what it says.
struct KeepAlive {
    /// `nil` (or not positive): never ping.
    let interval: Duration?
    /// How long a `PING` may wait for its answer before the connection is deemed dead.
    let replyTimeout: Duration
    private var lastActive: ContinuousClock.Instant
    /// Push mode: a `PING` went out and nothing has been read since; past this, the
    /// connection is dead (in request mode the `PING`'s own request deadline does this).
    private(set) var answerDeadline: ContinuousClock.Instant?

    init(interval: Duration?, replyTimeout: Duration, now: ContinuousClock.Instant) {
        self.interval = interval.flatMap { $0 > .zero ? $0 : nil }
        self.replyTimeout = replyTimeout
        lastActive = now
    }

    /// One turn of the poll loop: `busy` says whether the connection sent or awaited anything
    /// since the last turn. Returns whether to send a `PING` now.
    mutating func pingIsDue(now: ContinuousClock.Instant, busy: Bool) -> Bool {
        if busy {
            lastActive = now
            return false
        }
        guard let interval, now - lastActive >= interval else { return false }
        lastActive = now
        return true
    }

    /// A `PING` went out on a connection in push mode, whose replies match no request.
    mutating func pingSentInPushMode(now: ContinuousClock.Instant) {
        if answerDeadline == nil { answerDeadline = now + replyTimeout }
    }

    /// The connection read something: it is alive.
    mutating func readSomething() {
        answerDeadline = nil
    }

    /// `PING` in RESP, as every connection sends it.
    static let ping: [UInt8] = Array("*1\r\n$4\r\nPING\r\n".utf8)
}
