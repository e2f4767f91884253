import Broker
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// Ends connections whose client stopped taking data or answering, for every connection of the
/// gateway from one task.
///
/// A session that overflows is closed at once by the registry, but its writes may wait on a
/// client that does not read (its socket buffers full), and would hold the connection forever.
/// Each transport registers its connection while it serves it (``watch(session:channel:label:pings:)``,
/// ``unwatch(_:)``) and notes when its writes wait (``Progress/noteBlocked(_:)``); every
/// `interval` the watchdog closes the connection when its session was closed as a slow
/// consumer, or when its writes have waited longer than the stall timeout.
///
/// It also pings the WebSockets (RFC 6455 §5.5.2) every `pingInterval`, and closes one whose
/// client has not answered a ping within `pingTimeout` (pongs are noted by ``WebSocketConnection``).
///
/// One shared sweep rather than timer tasks per connection (a watchdog's, hummingbird-websocket's
/// auto-ping): a task keeps its first stack slab (about a kilobyte) and its sleeping frames for
/// the connection's whole life, which for thousands of idle connections adds up.
final class ConnectionWatchdog: Service, Sendable {
    /// Why the watchdog ended a connection.
    enum Verdict: Error, Equatable {
        case slowConsumer(capacity: Int)
        case stalled
        case pingTimeout
    }

    /// The writer's progress on one connection, shared with the watchdog.
    final class Progress: Sendable {
        let id: UInt64
        private let writeStarted = Mutex<ContinuousClock.Instant?>(nil)
        private let ping: Mutex<PingState>

        init(id: UInt64, now: ContinuousClock.Instant) {
            self.id = id
            self.ping = Mutex(PingState(lastSent: now))
        }

        var blockedSince: ContinuousClock.Instant? { writeStarted.withLock { $0 } }

        /// Whether writes wait on a channel that takes no more; blocked since the first time it
        /// says so.
        func noteBlocked(_ blocked: Bool) {
            writeStarted.withLock { since in
                if !blocked {
                    since = nil
                } else if since == nil {
                    since = .now
                }
            }
        }

        /// The client answered a ping.
        func pongReceived() { ping.withLock { $0.awaitingPong = false } }

        /// Pongs are noted from now on (until then a ping never times out).
        func pongsWatched() { ping.withLock { $0.pongsWatched = true } }

        /// What the sweep does about pings at `now`: the next ping waits for the previous pong.
        func pingDue(now: ContinuousClock.Instant, every interval: Duration, timeout: Duration) -> PingAction {
            ping.withLock { state in
                let since = state.lastSent.duration(to: now)
                if state.awaitingPong, state.pongsWatched {
                    return since >= timeout ? .timeout : .none
                }
                guard since >= interval else { return .none }
                state.lastSent = now
                state.awaitingPong = true
                return .send
            }
        }
    }

    struct PingState {
        var lastSent: ContinuousClock.Instant
        var awaitingPong = false
        var pongsWatched = false
    }

    enum PingAction: Equatable { case none, send, timeout }

    /// One watched connection.
    private struct Entry: Sendable {
        let progress: Progress
        /// The session whose slow-consumer close ends the connection (none for a transport that
        /// handles that itself, such as Socket.IO's event pump).
        var session: Session?
        let channel: any Channel
        let label: String
        /// Whether the channel is an upgraded WebSocket to ping.
        let pings: Bool
    }

    /// How often to look.
    let interval: Duration
    /// How long one write may stay blocked.
    let stallTimeout: Duration
    /// How often WebSockets are pinged.
    let pingInterval: Duration
    /// How long a ping may stay unanswered before the connection is closed.
    let pingTimeout: Duration
    private let logger: Logger
    private let entries = Mutex<[UInt64: Entry]>([:])
    private let nextID = Atomic<UInt64>(1)
    private let pingCount = Atomic<Int>(0)

    init(interval: Duration, stallTimeout: Duration, pingInterval: Duration, pingTimeout: Duration, logger: Logger) {
        self.interval = interval
        self.stallTimeout = stallTimeout
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.logger = logger
    }

    /// How many connections are watched.
    var count: Int { entries.withLock { $0.count } }

    /// How many watched connections have a write blocked now.
    var blockedCount: Int { entries.withLock { $0.values.count { $0.progress.blockedSince != nil } } }

    /// How many pings have been sent.
    var pingsSent: Int { pingCount.load(ordering: .relaxed) }

    /// Starts watching one connection; the transport must call ``unwatch(_:)`` when it ends.
    /// With `pings`, the channel is an upgraded WebSocket to ping (its handler notes the pongs).
    func watch(session: Session?, channel: any Channel, label: String, pings: Bool) -> Progress {
        let progress = Progress(id: nextID.add(1, ordering: .relaxed).oldValue, now: .now)
        let entry = Entry(progress: progress, session: session, channel: channel, label: label, pings: pings)
        entries.withLock { $0[progress.id] = entry }
        return progress
    }

    /// Names the session of a connection watched since before it had one (a WebSocket, whose
    /// session opens after the upgrade): its slow-consumer close ends the connection at the next
    /// sweep, whatever its transport does.
    func attach(_ session: Session, to progress: Progress) {
        entries.withLock { $0[progress.id]?.session = session }
    }

    /// Stops watching the connection of `progress`.
    func unwatch(_ progress: Progress) {
        _ = entries.withLock { $0.removeValue(forKey: progress.id) }
    }

    /// Sweeps every `interval` until cancelled or the graceful shutdown (it is shut down after
    /// the server, so it keeps watching while the server closes its connections).
    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: self.interval)
                    self.sweep()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Drops every connection that must end now and pings the WebSockets that are due; returns
    /// the verdicts.
    @discardableResult
    func sweep(now: ContinuousClock.Instant = .now) -> [Verdict] {
        var pings: [any Channel] = []
        let due: [(Entry, Verdict)] = entries.withLock { entries in
            var due: [(Entry, Verdict)] = []
            for (id, entry) in entries {
                var found = verdict(entry, now: now)
                if found == nil, entry.pings {
                    switch entry.progress.pingDue(now: now, every: pingInterval, timeout: pingTimeout) {
                    case .send: pings.append(entry.channel)
                    case .timeout: found = .pingTimeout
                    case .none: break
                    }
                }
                guard let found else { continue }
                due.append((entry, found))
                // Dropped once: the transport unregisters when its connection ends.
                entries[id] = nil
            }
            return due
        }
        pingCount.add(pings.count, ordering: .relaxed)
        for channel in pings {
            // Beside the transport's own writes: the frame encoder takes whole frames in order.
            channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer()), promise: nil)
        }
        for (entry, verdict) in due {
            var metadata: Logger.Metadata = ["transport": "\(entry.label)", "reason": "\(verdict)"]
            if let session = entry.session {
                metadata["session"] = "\(session.id)"
                metadata["userId"] = "\(session.userId)"
            }
            entry.session?.close()
            if verdict == .pingTimeout {
                logger.debug("client did not answer a ping: connection closed", metadata: metadata)
                var data = ByteBuffer()
                data.write(webSocketErrorCode: .goingAway)
                data.writeString("Ping timeout")
                entry.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))
                    .whenComplete { _ in entry.channel.close(promise: nil) }
            } else {
                logger.warning("client stopped reading: connection dropped", metadata: metadata)
                entry.channel.close(promise: nil)
            }
        }
        return due.map(\.1)
    }

    private func verdict(_ entry: Entry, now: ContinuousClock.Instant) -> Verdict? {
        if case .slowConsumer(let capacity) = entry.session?.closeReason { return .slowConsumer(capacity: capacity) }
        if let since = entry.progress.blockedSince, since.duration(to: now) > stallTimeout { return .stalled }
        return nil
    }
}
