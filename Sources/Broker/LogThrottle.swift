public import Logging
import Synchronization

/// Lets at most `limit` log lines of one kind through per `interval`, so that a flood of bad
/// input (a broken publisher sending thousands of malformed statuses a second, every status
/// failing while the backend is away) costs a few lines, not a disk. The counters and metrics
/// still count every event; the logs keep examples.
///
/// The first line let through after a window in which lines were held back carries their
/// number as `suppressed`.
public final class LogThrottle: Sendable {
    private struct Window {
        var start: ContinuousClock.Instant
        var logged = 0
        var suppressed = 0
    }

    public let limit: Int
    public let interval: Duration
    private let windows = Mutex<[String: Window]>([:])

    public init(limit: Int = 10, interval: Duration = .seconds(10)) {
        self.limit = max(1, limit)
        self.interval = interval
    }

    /// Logs through `logger` unless `limit` lines of `kind` were logged in the current window.
    /// `metadata` is only built for lines that are logged.
    public func log(
        _ kind: String, _ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata = [:], to logger: Logger
    ) {
        guard logger.logLevel <= level, let held = admit(kind, now: .now) else { return }
        var metadata = metadata()
        if held > 0 { metadata["suppressed"] = "\(held)" }
        logger.log(level: level, message(), metadata: metadata)
    }

    /// Whether a line of `kind` may be logged at `now`: `nil` if not, else how many lines of
    /// that kind were held back since the last one let through.
    func admit(_ kind: String, now: ContinuousClock.Instant) -> Int? {
        windows.withLock { windows in
            var window = windows[kind] ?? Window(start: now)
            if now - window.start >= interval {
                window.start = now
                window.logged = 0
            }
            guard window.logged < limit else {
                window.suppressed += 1
                windows[kind] = window
                return nil
            }
            window.logged += 1
            let held = window.suppressed
            window.suppressed = 0
            windows[kind] = window
            return held
        }
    }
}
