import Broker
import Logging
import NIOCore
import Synchronization

/// Ends connections whose client stopped taking data.
///
/// A session that overflows is closed at once by the registry, but the transport may be
/// stuck in a write to a client that does not read (its socket buffers full), and would hold
/// the connection forever. The watchdog runs beside the transport's writer and closes the
/// connection (failing the blocked write, which ends the transport) when the session was
/// closed as a slow consumer, or when one write has been blocked longer than the stall
/// timeout.
struct ConnectionWatchdog: Sendable {
    /// Why the watchdog ended the connection.
    enum Verdict: Error, Equatable {
        case slowConsumer(capacity: Int)
        case stalled
    }

    /// The writer's progress, shared with the watchdog.
    final class Progress: Sendable {
        private let writeStarted = Mutex<ContinuousClock.Instant?>(nil)

        /// Runs one write, noting while it is in flight.
        func writing<T>(_ write: () async throws -> T) async throws -> T {
            writeStarted.withLock { $0 = .now }
            defer { writeStarted.withLock { $0 = nil } }
            return try await write()
        }

        var blockedSince: ContinuousClock.Instant? { writeStarted.withLock { $0 } }
    }

    let session: Session
    let progress: Progress
    let channel: any Channel
    let logger: Logger
    /// How often to look.
    let interval: Duration
    /// How long one write may stay blocked.
    let stallTimeout: Duration

    init(session: Session, channel: any Channel, configuration: GatewayConfiguration, logger: Logger) {
        self.session = session
        self.progress = Progress()
        self.channel = channel
        self.logger = logger
        self.interval = configuration.watchdogInterval
        self.stallTimeout = configuration.writeStallTimeout
    }

    /// Watches until cancelled; closes the connection and returns the verdict when it must end.
    @discardableResult
    func run() async -> Verdict? {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return nil
            }
            if let verdict = verdict() {
                logger.warning("client stopped reading: connection dropped", metadata: ["reason": "\(verdict)"])
                session.close()
                channel.close(promise: nil)
                return verdict
            }
        }
        return nil
    }

    private func verdict() -> Verdict? {
        if case .slowConsumer(let capacity) = session.closeReason { return .slowConsumer(capacity: capacity) }
        if let since = progress.blockedSince, since.duration(to: .now) > stallTimeout { return .stalled }
        return nil
    }
}
