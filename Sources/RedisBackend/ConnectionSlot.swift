import Broker
import Logging
import Synchronization

/// A long-lived role (the shared command connection, the subscriber connection) filled by
/// one ``RedisConnection`` at a time, with the reconnect policy as a small state machine.
///
/// - Calls while the connection is up get it at once.
/// - The first call, or a call once the backoff delay has passed, makes a connection attempt;
///   concurrent callers wait for that attempt instead of starting their own.
/// - While Redis is down and the backoff delay runs, calls fail at once with
///   ``BrokerError/Code/connectionLost``: fail fast rather than pile up.
/// - ``maintain()`` (run by ``RedisBroker/run()``) makes the attempts proactively, so an idle
///   role, like the subscriber, comes back on its own.
///
/// Delays double from ``RedisConfiguration/initialBackoff`` to ``RedisConfiguration/maximumBackoff``
/// with jitter (each between half and all of the nominal delay).
final class ConnectionSlot: Sendable {
    typealias Opener = @Sendable (_ onClose: @escaping @Sendable (BrokerError) -> Void) async throws -> RedisConnection

    private enum Phase {
        case idle
        case connecting([CheckedContinuation<Result<RedisConnection, BrokerError>, Never>])
        case connected(RedisConnection)
        case down(BrokerError, retryAt: ContinuousClock.Instant)
        case shutDown
    }

    private struct State {
        var phase = Phase.idle
        var failedAttempts = 0
        var everConnected = false
        /// Another role connected while this role's attempt was under way (see ``peerConnected()``).
        var peerConnectedDuringAttempt = false
        var changeWaiter: CheckedContinuation<Void, Never>?
    }

    let role: String
    private let configuration: RedisConfiguration
    private let logger: Logger
    private let opener: Opener
    /// Runs after every successful reconnect (not the first connect), before waiting callers
    /// get the connection: the subscriber resubscribes here.
    private let onReconnect: @Sendable (RedisConnection) -> Void
    private let state = Mutex(State())
    private let clock = ContinuousClock()

    init(role: String, configuration: RedisConfiguration, logger: Logger,
         opener: @escaping Opener, onReconnect: @escaping @Sendable (RedisConnection) -> Void)
    {
        self.role = role
        self.configuration = configuration
        self.logger = logger
        self.opener = opener
        self.onReconnect = onReconnect
    }

    /// The connection if it is up right now (no attempt is made).
    var current: RedisConnection? {
        state.withLock { state in
            if case .connected(let connection) = state.phase { return connection }
            return nil
        }
    }

    /// Whether a connection was ever opened.
    var hasConnected: Bool { state.withLock { $0.everConnected } }

    /// Why the server refused this slot's settings, if it did so before any connection was
    /// opened (``BrokerError/refusesSettings``); `nil` otherwise.
    var refusal: BrokerError? {
        state.withLock { state in
            guard !state.everConnected, case .down(let error, _) = state.phase, error.refusesSettings else { return nil }
            return error
        }
    }

    /// The connection, connecting first if needed; fails fast while Redis is known to be down.
    func connection() async throws(BrokerError) -> RedisConnection {
        enum Next { case use(RedisConnection), attempt, wait, fail(BrokerError) }
        let now = clock.now
        let next: Next = state.withLock { state in
            switch state.phase {
            case .connected(let connection): return .use(connection)
            case .connecting: return .wait
            case .idle: state.phase = .connecting([]); return .attempt
            case .down(let error, let retryAt):
                if now >= retryAt { state.phase = .connecting([]); return .attempt }
                return .fail(BrokerError(.connectionLost, "redis is unreachable (\(error.message)); reconnecting"))
            case .shutDown: return .fail(BrokerError(.shutDown, "the redis broker was shut down"))
            }
        }
        switch next {
        case .use(let connection): return connection
        case .fail(let error): throw error
        case .attempt:
            let everConnected = state.withLock { $0.everConnected }
            // After an outage every failure is `connectionLost`; before the first connection
            // the cause (refused, bad credentials) tells the operator what to fix.
            return try await attempt().mapError { error in
                everConnected && (error.code == .connectionFailed || error.refusesSettings)
                    ? BrokerError(.connectionLost, error.message) : error
            }.get()
        case .wait:
            let result = await withCheckedContinuation { continuation in
                let immediate: Result<RedisConnection, BrokerError>? = state.withLock { state in
                    switch state.phase {
                    case .connecting(var waiters):
                        waiters.append(continuation)
                        state.phase = .connecting(waiters)
                        return nil
                    case .connected(let connection): return .success(connection)
                    case .down(let error, _): return .failure(BrokerError(.connectionLost, error.message))
                    case .idle, .shutDown: return .failure(BrokerError(.shutDown, "the redis broker was shut down"))
                    }
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
            return try result.get()
        }
    }

    /// One connection attempt; the phase is `.connecting` on entry.
    private func attempt() async -> Result<RedisConnection, BrokerError> {
        state.withLock { $0.peerConnectedDuringAttempt = false }
        let result: Result<RedisConnection, BrokerError>
        do {
            let connection = try await opener { [weak self] error in self?.connectionClosed(error) }
            result = .success(connection)
        } catch let error as BrokerError {
            result = .failure(error)
        } catch {
            result = .failure(BrokerError(.connectionFailed, "\(error)"))
        }
        let backoff = nextBackoff()
        // How many attempts had failed before this first connection (0 when it is a reconnect).
        let (waiters, reconnected, failedFirstAttempts, shutDown) = state.withLock { state
            -> ([CheckedContinuation<Result<RedisConnection, BrokerError>, Never>], Bool, Int, Bool) in
            guard case .connecting(let waiters) = state.phase else { return ([], false, 0, true) }
            switch result {
            case .success(let connection):
                let reconnected = state.everConnected
                let failedFirstAttempts = reconnected ? 0 : state.failedAttempts
                state.everConnected = true
                state.failedAttempts = 0
                if let reason = connection.closedReason {
                    // Closed before we took it: its onClose found us still connecting.
                    state.phase = .down(reason, retryAt: clock.now + configuration.initialBackoff)
                } else {
                    state.phase = .connected(connection)
                }
                return (waiters, reconnected, failedFirstAttempts, false)
            case .failure(let error):
                state.failedAttempts += 1
                // A peer reached the server meanwhile: this failure (refused while Redis was
                // starting) is likely stale already, so try again at once rather than back off.
                let delay = state.peerConnectedDuringAttempt ? .zero : backoff(state.failedAttempts)
                state.phase = .down(error, retryAt: clock.now + delay)
                return (waiters, false, 0, false)
            }
        }
        if shutDown, case .success(let connection) = result {
            connection.close(BrokerError(.shutDown, "the redis broker was shut down"))
            return .failure(BrokerError(.shutDown, "the redis broker was shut down"))
        }
        switch result {
        case .success(let connection):
            if reconnected {
                logger.info("redis reconnected", metadata: ["role": "\(role)", "address": "\(configuration.address)"])
                onReconnect(connection)
            } else if failedFirstAttempts > 0 {
                // Redis was down when we started: the warnings above were all the operator saw,
                // so say that it is up now. A first try that works stays quiet, as before.
                logger.notice("redis connected", metadata: [
                    "role": "\(role)", "address": "\(configuration.address)", "failedAttempts": "\(failedFirstAttempts)",
                ])
            }
        case .failure(let error):
            logger.warning("redis connection attempt failed",
                           metadata: ["role": "\(role)", "error": "\(error.message)"])
        }
        let shared = result.mapError { BrokerError(.connectionLost, $0.message) }
        for waiter in waiters { waiter.resume(returning: shared) }
        signalChange()
        return result
    }

    /// Another role (the command or the subscriber connection) just connected to the same
    /// server, so Redis is reachable: a backoff this role is sitting out rests on stale news.
    /// The next call, and ``maintain()``, try at once instead of failing fast with "redis is
    /// unreachable" for up to ``RedisConfiguration/maximumBackoff`` longer (a subscribe right
    /// after a successful ping failed that way; an idle subscriber came back that much later,
    /// missing messages meanwhile).
    func peerConnected() {
        let now = clock.now
        let changed = state.withLock { state -> Bool in
            switch state.phase {
            case .down(let error, let retryAt) where retryAt > now:
                state.phase = .down(error, retryAt: now)
                return true
            case .connecting:
                state.peerConnectedDuringAttempt = true
                return false
            default:
                return false
            }
        }
        if changed { signalChange() }
    }

    private func nextBackoff() -> @Sendable (Int) -> Duration {
        let initial = configuration.initialBackoff
        let maximum = configuration.maximumBackoff
        return { failures in
            var nominal = initial
            for _ in 1..<max(1, min(failures, 30)) where nominal < maximum { nominal *= 2 }
            nominal = min(nominal, maximum)
            return nominal * Double.random(in: 0.5...1.0)
        }
    }

    private func connectionClosed(_ error: BrokerError) {
        let lost = state.withLock { state -> Bool in
            // Only the current connection's end matters (a stale one's close is not news).
            guard case .connected(let current) = state.phase, current.closedReason != nil else { return false }
            // Retry soon: the first reconnect attempt after a loss waits only the initial delay.
            state.phase = .down(error, retryAt: clock.now + configuration.initialBackoff * Double.random(in: 0.5...1.0))
            return true
        }
        if lost {
            logger.warning("redis connection lost", metadata: ["role": "\(role)", "error": "\(error.message)"])
            signalChange()
        }
    }

    private func signalChange() {
        let waiter = state.withLock { state in
            defer { state.changeWaiter = nil }
            return state.changeWaiter
        }
        waiter?.resume()
    }

    /// Keeps the role connected until the task is cancelled or the slot is shut down:
    /// reconnects with backoff after every loss, without waiting for a caller to ask.
    func maintain() async {
        while !Task.isCancelled {
            enum Step { case attemptNow, sleep(until: ContinuousClock.Instant), waitForChange, stop }
            let now = clock.now
            let step: Step = state.withLock { state in
                switch state.phase {
                case .idle: state.phase = .connecting([]); return .attemptNow
                case .down(_, let retryAt):
                    if now >= retryAt { state.phase = .connecting([]); return .attemptNow }
                    return .sleep(until: retryAt)
                case .connecting, .connected: return .waitForChange
                // Nothing to keep up (waiting for a change here would return at once, forever).
                case .shutDown: return .stop
                }
            }
            switch step {
            case .stop:
                return
            case .attemptNow:
                _ = await attempt()
            case .sleep(let retryAt):
                // The backoff, cut short when a peer's connection moves the retry forward.
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await Task.sleep(until: retryAt, clock: self.clock) }
                    group.addTask {
                        await self.waitForChange { phase in
                            if case .down(_, let current) = phase { return current == retryAt }
                            return false
                        }
                    }
                    await group.next()
                    group.cancelAll()
                }
            case .waitForChange:
                await waitForChange { phase in
                    switch phase {
                    case .connected, .connecting: return true
                    default: return false
                    }
                }
            }
        }
    }

    /// Waits for ``signalChange()`` while `unchanged` holds for the phase (checked under the
    /// lock when registering, so a change just before is not missed), or until cancelled.
    private func waitForChange(while unchanged: @escaping @Sendable (Phase) -> Bool) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    guard unchanged(state.phase), !Task.isCancelled else { return true }
                    state.changeWaiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signalChange()
        }
    }

    /// Closes the connection for good; later calls fail with ``BrokerError/Code/shutDown``.
    func shutdown() {
        let (connection, waiters) = state.withLock { state in
            var connection: RedisConnection?
            var waiters: [CheckedContinuation<Result<RedisConnection, BrokerError>, Never>] = []
            switch state.phase {
            case .connected(let current): connection = current
            case .connecting(let pending): waiters = pending
            default: break
            }
            state.phase = .shutDown
            return (connection, waiters)
        }
        let error = BrokerError(.shutDown, "the redis broker was shut down")
        connection?.close(error)
        for waiter in waiters { waiter.resume(returning: .failure(error)) }
        signalChange()
    }
}

extension BrokerError {
    /// Whether a connection attempt failed because the server refused the settings (the
    /// password or user, the database number, TLS files) rather than being away: retrying the
    /// same settings fails the same way.
    var refusesSettings: Bool { code == .authenticationFailed || code == .invalidArgument }
}
