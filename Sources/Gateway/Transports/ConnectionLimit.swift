import HummingbirdCore
import Logging
import NIOCore

/// Caps the connections a gateway serves at once (``GatewayConfiguration/maxConnections``).
/// At the cap the server stops accepting: new connections wait in the kernel's listen backlog
/// until others close. That keeps descriptors for the broker's reconnections, and says so:
/// without it the process runs out of descriptors, accepting stalls without a log line, and a
/// Redis reconnection fails too.
///
/// Hummingbird's server calls it on the listening channel's event loop, one call at a time.
struct ConnectionLimit: AvailableConnectionsDelegate {
    /// Descriptors kept back from the open-file limit when the cap is derived from it: the
    /// broker's connections, the agent's, the event loops' own, files.
    static let reserve = 128

    let maximum: Int
    let logger: Logger
    private var open = 0
    /// When the last "limit reached" warning went out (at most one per 10 s).
    private var warnedAt: ContinuousClock.Instant?

    init(maximum: Int, logger: Logger) {
        self.maximum = max(1, maximum)
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        guard open == maximum else { return }
        let now = ContinuousClock.now
        if let warnedAt, now - warnedAt < .seconds(10) { return }
        warnedAt = now
        logger.warning(
            "connection limit reached: new connections wait until others close; raise --max-connections (and the open-file limit, ulimit -n) if this host can serve more",
            metadata: ["connections": "\(open)", "maxConnections": "\(maximum)"])
    }

    mutating func connectionClosed() {
        open -= 1
    }

    func isAcceptingNewConnections() -> Bool {
        open < maximum
    }

    /// The cap that fits the process's open-file limit: the soft limit less ``reserve``, at least
    /// 16; none that anything reaches when the limit cannot be read.
    static func fromOpenFileLimit() -> Int {
        guard let limit = OpenFileLimit.current else { return Int.max }
        return max(16, limit - reserve)
    }
}
