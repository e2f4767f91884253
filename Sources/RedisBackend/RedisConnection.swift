private import CHiredis
import Broker
import DequeModule
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One connection to Redis: a non-blocking socket whose replies are read and parsed by hiredis
/// on the connection's own I/O thread, so no hiredis call ever runs on Swift's cooperative pool.
///
/// **Sending.** A caller registers its request in the in-flight FIFO and, when the connection
/// is idle (nothing in flight, nothing waiting to be written), writes the encoded bytes itself
/// with one non-blocking `write` (no thread hop on the latency-critical path). When requests are
/// already in flight, new ones are appended to an output buffer that the I/O thread flushes as
/// soon as replies come back: concurrent callers' commands share one write and one round trip
/// (auto-pipelining), the way Nagle batches, without a timer.
///
/// **Receiving.** The I/O thread `poll()`s the socket and an eventfd (for close requests and
/// output the socket could not take), feeds hiredis's reader (`redisBufferRead`,
/// `redisGetReplyFromReader`) and completes requests in FIFO order. A connection in push mode
/// (the subscriber) hands every reply to its push handler instead.
///
/// A connection lives once: when its socket fails, the oldest request outlives its timeout, or
/// it is closed, every waiting caller fails, `onClose` runs and the thread ends. Reconnecting
/// means opening a new one (``ConnectionSlot``).
final class RedisConnection: Sendable {
    typealias Completion = @Sendable (Result<[RESPValue], BrokerError>) -> Void

    struct Request: Sendable {
        var bytes: [UInt8]
        var replies: Int
        var timeout: Duration?
        var completion: Completion
    }

    private struct InFlight {
        var remaining: Int
        var collected: [RESPValue]
        var deadline: ContinuousClock.Instant?
        var completion: Completion
    }

    private struct State: ~Copyable {
        var inFlight = Deque<InFlight>()
        /// Bytes not yet written (from `outputOffset` on).
        var output: [UInt8] = []
        var outputOffset = 0
        var closeRequest: BrokerError?
        var closed: BrokerError?
        var clientID: Int64 = 0
        var socket: Int32 = -1
        /// The I/O thread is writing buffered output outside the lock: nobody else writes.
        var writing = false
        /// A caller sent a request since the I/O thread last looked (for ``KeepAlive``): a
        /// flag, not a clock read, so the hot path pays nothing for keep-alive.
        var sentSinceLook = false

        var hasOutput: Bool { outputOffset < output.count }

        /// Ends a write made outside the lock: the bytes it could not write go back in front of
        /// what callers appended meanwhile.
        mutating func finishWrite(_ bytes: [UInt8], writtenUpTo offset: Int) {
            writing = false
            guard offset < bytes.count else { return }
            var rest = Array(bytes[offset...])
            rest.append(contentsOf: output[outputOffset...])
            output = rest
            outputOffset = 0
        }
    }

    /// What the handshake does beyond AUTH and SELECT.
    struct Setup: Sendable {
        var name: String
        var loadScripts: [String] = []
        var pushHandler: (@Sendable (RESPValue) -> Void)?
        /// Runs its jobs on this connection's I/O thread while the connection is up.
        var executor: ConnectionExecutor?
        var onClose: @Sendable (BrokerError) -> Void
    }

    let name: String
    private let state = Mutex(State())
    private let wakeDescriptor: Int32
    private let clock = ContinuousClock()

    private init(name: String) throws(BrokerError) {
        self.name = name
        let descriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard descriptor >= 0 else { throw BrokerError(.connectionFailed, "redis: eventfd failed (errno \(errno))") }
        wakeDescriptor = descriptor
    }

    deinit {
        Glibc.close(wakeDescriptor)
    }

    /// Connects on a new I/O thread and returns once the handshake (AUTH, SELECT, script loads)
    /// succeeded. The caller suspends meanwhile; it never blocks a pool thread.
    static func open(_ configuration: RedisConfiguration, setup: Setup, logger: Logger) async throws
        -> (connection: RedisConnection, scriptHashes: [String])
    {
        let connection = try RedisConnection(name: setup.name)
        let hashes = try await withCheckedThrowingContinuation { (ready: CheckedContinuation<[String], any Error>) in
            let thread = Thread {
                connection.runIOThread(configuration, setup: setup, ready: ready, logger: logger)
            }
            thread.name = "redis-\(setup.name)"
            thread.start()
        }
        return (connection, hashes)
    }

    /// The server's id for this connection (`CLIENT ID`), for `CLIENT UNBLOCK`.
    var clientID: Int64 { state.withLock { $0.clientID } }

    /// Why the connection ended, or `nil` while it is up.
    var closedReason: BrokerError? { state.withLock { $0.closed } }

    /// Sends encoded commands expecting `replies` replies (0 in push mode), and waits for them.
    func send(_ bytes: [UInt8], replies: Int, timeout: Duration?) async throws(BrokerError) -> [RESPValue] {
        try await result(of: bytes, replies: replies, timeout: timeout).get()
    }

    /// ``send(_:replies:timeout:)`` with the outcome as a value.
    func result(of bytes: [UInt8], replies: Int, timeout: Duration?) async -> Result<[RESPValue], BrokerError> {
        // Unsafe: the hot path; every request's completion runs exactly once (a reply, a
        // failure of the connection, or at once when it is closed).
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<[RESPValue], BrokerError>, Never>) in
            enqueue(Request(bytes: bytes, replies: replies, timeout: timeout) { continuation.resume(returning: $0) })
        }
    }

    /// Sends a request; its completion runs on the I/O thread (or here, on failure).
    ///
    /// The write itself happens outside the lock: callers that arrive meanwhile append to the
    /// output buffer (they would otherwise spin on the lock for the length of a syscall), and
    /// the writing caller sends what they appended before it leaves.
    func enqueue(_ request: Request) {
        enum Action { case none, write(Int32), fail(BrokerError) }
        let deadline = request.timeout.map { clock.now + $0 }
        let action: Action = state.withLock { state in
            if let closed = state.closed { return .fail(closed) }
            state.sentSinceLook = true
            let idle = state.inFlight.isEmpty && !state.hasOutput && !state.writing
            if request.replies > 0 {
                var collected: [RESPValue] = []
                collected.reserveCapacity(request.replies)
                state.inFlight.append(InFlight(
                    remaining: request.replies, collected: collected, deadline: deadline, completion: request.completion))
            }
            guard idle else {
                // Replies are on their way (or someone is writing): this goes out with the
                // next write, together with whatever else queues up meanwhile.
                state.output.append(contentsOf: request.bytes)
                return .none
            }
            state.writing = true
            return .write(state.socket)
        }
        switch action {
        case .none:
            break
        case .write(let socket):
            let (written, failure) = Self.write(request.bytes, from: 0, to: socket)
            let flushMore = state.withLock { state in
                state.finishWrite(request.bytes, writtenUpTo: written)
                if let failure, state.closeRequest == nil { state.closeRequest = failure }
                return state.hasOutput
            }
            if failure != nil {
                wake()
            } else if flushMore {
                // What others appended while this caller wrote; a full socket or a failure is
                // left to the I/O thread (POLLOUT, close).
                if let failure = writePending() {
                    state.withLock { if $0.closeRequest == nil { $0.closeRequest = failure } }
                }
                if state.withLock({ $0.hasOutput || $0.closeRequest != nil }) { wake() }
            }
        case .fail(let error):
            request.completion(.failure(error))
            return
        }
        if request.replies == 0 { request.completion(.success([])) }
    }

    /// Writes `bytes[offset...]` to a non-blocking socket until done, full (`EAGAIN`) or failed.
    /// - Returns: how far it got, and the failure if the socket failed.
    private static func write(_ bytes: [UInt8], from start: Int, to socket: Int32) -> (Int, BrokerError?) {
        var offset = start
        while offset < bytes.count {
            // send(MSG_NOSIGNAL): a peer that went away gives EPIPE, not a process-killing SIGPIPE.
            let written = bytes.withUnsafeBytes {
                Glibc.send(socket, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written >= 0 {
                offset += written
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else {
                return (offset, BrokerError(.connectionLost, "redis: write failed (errno \(errno))"))
            }
        }
        return (offset, nil)
    }

    /// Closes the connection: pending and later callers fail with `reason`.
    func close(_ reason: BrokerError) {
        state.withLock { state in
            if state.closeRequest == nil { state.closeRequest = reason }
        }
        wake()
    }

    fileprivate func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
    }

    // MARK: The I/O thread

    private func runIOThread(
        _ configuration: RedisConfiguration, setup: Setup, ready: CheckedContinuation<[String], any Error>,
        logger: Logger
    ) {
        // hiredis writes the handshake with write(2): block SIGPIPE on this thread so a server
        // dying mid-handshake gives EPIPE instead of killing the process.
        var pipe = sigset_t()
        sigemptyset(&pipe)
        sigaddset(&pipe, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipe, nil)
        let context: HiredisContext
        do {
            context = try HiredisContext.connect(configuration)
            let (clientID, hashes) = try handshake(context, configuration, setup)
            try context.makeNonBlocking()
            state.withLock { state in
                state.clientID = clientID
                state.socket = context.fileDescriptor
            }
            setup.executor?.attach(.init(thread: pthread_self(), wake: { self.wake() }))
            ready.resume(returning: hashes)
        } catch {
            state.withLock { $0.closed = error }
            ready.resume(throwing: error)
            return
        }
        let reason = pollLoop(context, configuration, setup: setup)
        // Before failing callers: their tasks must not be queued for a thread that is leaving.
        setup.executor?.detach()
        let pending = state.withLock { state in
            state.closed = reason
            state.socket = -1
            defer { state.inFlight = [] }
            return state.inFlight
        }
        for request in pending { request.completion(.failure(reason)) }
        // A caller may be in the middle of a write (outside the lock): the socket must not
        // close, and its number be reused, under it. No write starts once `closed` is set.
        while state.withLock({ $0.writing }) { usleep(20) }
        logger.debug("redis connection closed", metadata: ["connection": "\(name)", "reason": "\(reason)"])
        setup.onClose(reason)
        withExtendedLifetime(context) {}  // freed (redisFree closes the socket) only now
    }

    private func handshake(_ context: HiredisContext, _ configuration: RedisConfiguration, _ setup: Setup)
        throws(BrokerError) -> (Int64, [String])
    {
        func run(_ arguments: [String]) throws(BrokerError) -> RESPValue {
            let reply = try context.blockingCommand(arguments)
            if case .error(let message) = reply {
                let error = RESPValue.brokerError(fromServerMessage: message)
                throw [.serverError, .invalidArgument, .outOfMemory, .readOnly].contains(error.code)
                    ? BrokerError(.connectionFailed, "\(arguments[0]): \(error.message)") : error
            }
            return reply
        }
        // A refusal of the settings (AUTH, SELECT, CLIENT SETNAME) is the server answering: not
        // an outage, and it will not pass by itself (see `refusesSettings`). NOAUTH on any of
        // them means a password is needed. A connection lost meanwhile stays an outage.
        func applySetting(_ arguments: [String], refused: (String) -> BrokerError) throws(BrokerError) {
            guard case .error(let message) = try context.blockingCommand(arguments) else { return }
            let refusal = refused(message)
            let error = RESPValue.brokerError(fromServerMessage: message)
            throw error.code == .authenticationFailed && refusal.code != .authenticationFailed ? error : refusal
        }
        if let password = configuration.password {
            try applySetting(configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]) {
                BrokerError(.authenticationFailed, "redis: AUTH refused: \($0)")
            }
        }
        if configuration.database != 0 {
            // A database the server does not have (its `databases` setting).
            try applySetting(["SELECT", String(configuration.database)]) {
                BrokerError(.invalidArgument, "redis: the server has no database \(configuration.database) (\($0))")
            }
        }
        try applySetting(["CLIENT", "SETNAME", "\(configuration.clientName)-\(setup.name)"]) {
            BrokerError(.invalidArgument, "redis: the client name '\(configuration.clientName)' is refused (\($0))")
        }
        guard case .integer(let clientID) = try run(["CLIENT", "ID"]) else {
            throw BrokerError(.unexpectedReply, "redis: CLIENT ID did not answer an integer")
        }
        var hashes: [String] = []
        for script in setup.loadScripts {
            guard let hash = try run(["SCRIPT", "LOAD", script]).text else {
                throw BrokerError(.unexpectedReply, "redis: SCRIPT LOAD did not answer a hash")
            }
            hashes.append(hash)
        }
        return (clientID, hashes)
    }

    /// Writes the buffered output, as far as the socket takes it, outside the lock (callers
    /// keep appending meanwhile; `writing` keeps them from writing themselves).
    private func writePending() -> BrokerError? {
        while true {
            let taken: (bytes: [UInt8], offset: Int, socket: Int32)? = state.withLock { state in
                guard state.hasOutput, !state.writing, state.closed == nil else { return nil }
                state.writing = true
                var bytes: [UInt8] = []
                swap(&bytes, &state.output)
                defer { state.outputOffset = 0 }
                return (bytes, state.outputOffset, state.socket)
            }
            guard let (bytes, start, socket) = taken else { return nil }
            let (offset, failure) = Self.write(bytes, from: start, to: socket)
            let full = failure == nil && offset < bytes.count
            state.withLock { $0.finishWrite(bytes, writtenUpTo: offset) }
            if let failure { return failure }
            if full { return nil }  // POLLOUT tells when to go on
        }
    }

    /// Whether `reply` is a replica's refusal of a write (`READONLY`, as mapped for callers).
    private static func isReadOnlyRefusal(_ reply: RESPValue) -> Bool {
        guard case .error(let message) = reply else { return false }
        return RESPValue.brokerError(fromServerMessage: message).code == .readOnly
    }

    /// Runs until the connection fails or is closed; returns why.
    private func pollLoop(_ context: HiredisContext, _ configuration: RedisConfiguration, setup: Setup) -> BrokerError {
        var keepAlive = KeepAlive(
            interval: configuration.keepAliveInterval, replyTimeout: configuration.commandTimeout, now: clock.now)
        let pushMode = setup.pushHandler != nil
        var descriptors = [
            pollfd(fd: context.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        var completed: [(Completion, [RESPValue])] = []
        while true {
            // Tasks that prefer this connection's executor run here, between reads.
            let moreJobs = setup.executor?.runPending() ?? false
            let now = clock.now
            let (closeRequest, wantsWrite, requestDeadline, pinged) = state.withLock { state in
                let busy = state.sentSinceLook || !state.inFlight.isEmpty || state.hasOutput || state.writing
                state.sentSinceLook = false
                let pinged = keepAlive.pingIsDue(now: now, busy: busy)
                if pinged {
                    // Idle: nothing in flight, so the PING's reply is the next one read.
                    state.output.append(contentsOf: KeepAlive.ping)
                    if !pushMode {
                        state.inFlight.append(InFlight(
                            remaining: 1, collected: [], deadline: now + keepAlive.replyTimeout, completion: { _ in }))
                    }
                }
                return (state.closeRequest, state.hasOutput, state.inFlight.first?.deadline, pinged)
            }
            if let closeRequest { return closeRequest }
            if pinged, pushMode { keepAlive.pingSentInPushMode(now: now) }
            // Wake at least every 100 ms, so a request sent directly by a caller while this
            // thread slept still meets its deadline.
            var timeout = moreJobs ? Duration.zero : Duration.milliseconds(100)
            if let answerDeadline = keepAlive.answerDeadline {
                let remaining = now.duration(to: answerDeadline)
                if remaining <= .zero {
                    return BrokerError(
                        .timedOut, "redis: no answer to a keep-alive PING within the command timeout; connection reset")
                }
                timeout = min(timeout, remaining)
            }
            if let deadline = requestDeadline {
                let remaining = now.duration(to: deadline)
                if remaining <= .zero {
                    return BrokerError(.timedOut, "redis: no reply within the command timeout; connection reset")
                }
                timeout = min(timeout, remaining)
            }
            descriptors[0].events = Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0)
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, Int32(clamping: timeout.millisecondsRoundedUp))
            if ready < 0 {
                if errno == EINTR { continue }
                return BrokerError(.connectionLost, "redis: poll failed (errno \(errno))")
            }
            if descriptors[1].revents != 0 {
                var count: UInt64 = 0
                _ = Glibc.read(wakeDescriptor, &count, 8)
            }
            let socketEvents = descriptors[0].revents
            if socketEvents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                do {
                    try context.fill()
                    var replies: [RESPValue] = []
                    while let reply = try context.nextReply() { replies.append(reply) }
                    if !replies.isEmpty { keepAlive.readSomething() }
                    if let push = setup.pushHandler {
                        for reply in replies { push(reply) }
                    } else if !replies.isEmpty {
                        // Match replies to requests and flush what queued up meanwhile, in one
                        // lock; complete the callers outside it.
                        let failure: BrokerError? = state.withLock { state in
                            for reply in replies {
                                guard !state.inFlight.isEmpty else {
                                    return BrokerError(.unexpectedReply, "redis: a reply nobody asked for: \(reply)")
                                }
                                state.inFlight[state.inFlight.startIndex].collected.append(reply)
                                state.inFlight[state.inFlight.startIndex].remaining -= 1
                                if state.inFlight[state.inFlight.startIndex].remaining == 0 {
                                    let done = state.inFlight.removeFirst()
                                    completed.append((done.completion, done.collected))
                                }
                            }
                            return nil
                        }
                        if let failure { return failure }
                        // Send what queued up while these were in flight before waking the
                        // callers, who will queue more.
                        if let failure = writePending() { return failure }
                        for (completion, values) in completed { completion(.success(values)) }
                        completed.removeAll(keepingCapacity: true)
                        // A replica refusing a write: after a failover this connection still
                        // reaches the old primary. Reopening it resolves the address again.
                        if replies.contains(where: Self.isReadOnlyRefusal) {
                            return BrokerError(
                                .connectionLost,
                                "redis: the server is a read-only replica (READONLY), as after a failover; reconnecting to reach the primary")
                        }
                    }
                } catch {
                    return error
                }
            }
            if socketEvents & Int16(POLLOUT) != 0 || wantsWrite {
                if let failure = writePending() { return failure }
            }
        }
    }
}
