private import CHiredis
import Broker
import DequeModule
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One connection to Redis: a non-blocking hiredis context driven by its own I/O thread, so
/// no hiredis call ever runs on Swift's cooperative pool.
///
/// The thread `poll()`s the socket and an eventfd. Callers queue already encoded commands
/// (``send(_:replies:timeout:)``) and suspend; the thread copies everything queued into one
/// write (auto-pipelining: commands from many tasks share a syscall and a round trip) and
/// hands replies back in FIFO order. A connection in push mode (the subscriber) hands every
/// reply to its push handler instead.
///
/// A connection lives once: when its socket fails, a command outlives ``RedisConfiguration/commandTimeout``
/// or it is closed, every waiting caller fails, `onClose` runs, and the thread ends. Reconnecting
/// means opening a new one (``ConnectionSlot``).
final class RedisConnection: Sendable {
    typealias Completion = @Sendable (Result<[RESPValue], BrokerError>) -> Void

    struct Request: Sendable {
        var bytes: [UInt8]
        var replies: Int
        var timeout: Duration?
        var completion: Completion
    }

    private struct State: Sendable {
        var queue: [Request] = []
        var sleeping = false
        var closeRequest: BrokerError?
        var closed: BrokerError?
        var clientID: Int64 = 0
    }

    /// What the handshake does beyond AUTH and SELECT.
    struct Setup: Sendable {
        var name: String
        var loadScripts: [String] = []
        var pushHandler: (@Sendable (RESPValue) -> Void)?
        var onClose: @Sendable (BrokerError) -> Void
    }

    let name: String
    private let state = Mutex(State())
    private let wakeDescriptor: Int32

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

    /// Queues encoded commands expecting `replies` replies (0 in push mode), and waits for them.
    func send(_ bytes: [UInt8], replies: Int, timeout: Duration?) async throws(BrokerError) -> [RESPValue] {
        try await result(of: bytes, replies: replies, timeout: timeout).get()
    }

    /// ``send(_:replies:timeout:)`` with the outcome as a value.
    func result(of bytes: [UInt8], replies: Int, timeout: Duration?) async -> Result<[RESPValue], BrokerError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<[RESPValue], BrokerError>, Never>) in
            enqueue(Request(bytes: bytes, replies: replies, timeout: timeout) { continuation.resume(returning: $0) })
        }
    }

    /// Queues a request; its completion runs on the I/O thread (or here, if the connection is closed).
    func enqueue(_ request: Request) {
        enum Action { case none, wake, fail(BrokerError) }
        let action: Action = state.withLock { state in
            if let closed = state.closed { return .fail(closed) }
            state.queue.append(request)
            if state.sleeping {
                state.sleeping = false
                return .wake
            }
            return .none
        }
        switch action {
        case .none: break
        case .wake: wake()
        case .fail(let error): request.completion(.failure(error))
        }
    }

    /// Closes the connection: pending and later callers fail with `reason`.
    func close(_ reason: BrokerError) {
        state.withLock { state in
            if state.closeRequest == nil { state.closeRequest = reason }
        }
        wake()
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeDescriptor, &one, 8)
    }

    // MARK: The I/O thread

    private struct InFlight {
        var remaining: Int
        var collected: [RESPValue]
        var deadline: ContinuousClock.Instant?
        var completion: Completion
    }

    private func runIOThread(
        _ configuration: RedisConfiguration, setup: Setup, ready: CheckedContinuation<[String], any Error>,
        logger: Logger
    ) {
        let context: HiredisContext
        do {
            context = try HiredisContext(host: configuration.host, port: configuration.port,
                                         timeout: configuration.connectTimeout)
            let (clientID, hashes) = try handshake(context, configuration, setup)
            try context.makeNonBlocking()
            state.withLock { $0.clientID = clientID }
            ready.resume(returning: hashes)
        } catch {
            state.withLock { $0.closed = error }
            ready.resume(throwing: error)
            return
        }
        var inFlight = Deque<InFlight>()
        let reason = pollLoop(context, configuration, setup: setup, inFlight: &inFlight)
        let leftovers = state.withLock { state in
            state.closed = reason
            defer { state.queue = [] }
            return state.queue
        }
        for pending in inFlight { pending.completion(.failure(reason)) }
        for request in leftovers { request.completion(.failure(reason)) }
        logger.debug("redis connection closed", metadata: ["connection": "\(name)", "reason": "\(reason)"])
        setup.onClose(reason)
    }

    private func handshake(_ context: HiredisContext, _ configuration: RedisConfiguration, _ setup: Setup)
        throws(BrokerError) -> (Int64, [String])
    {
        func run(_ arguments: [String]) throws(BrokerError) -> RESPValue {
            let reply = try context.blockingCommand(arguments)
            if case .error(let message) = reply {
                let error = RESPValue.brokerError(fromServerMessage: message)
                throw error.code == .serverError || error.code == .invalidArgument
                    ? BrokerError(.connectionFailed, "\(arguments[0]): \(error.message)") : error
            }
            return reply
        }
        if let password = configuration.password {
            do {
                _ = try run(configuration.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            } catch {
                throw BrokerError(.authenticationFailed, "redis: AUTH refused: \(error.message)")
            }
        }
        if configuration.database != 0 { _ = try run(["SELECT", String(configuration.database)]) }
        _ = try run(["CLIENT", "SETNAME", "switchboard-\(setup.name)"])
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

    /// Runs until the connection fails or is closed; returns why.
    private func pollLoop(
        _ context: HiredisContext, _ configuration: RedisConfiguration, setup: Setup, inFlight: inout Deque<InFlight>
    ) -> BrokerError {
        let clock = ContinuousClock()
        var descriptors = [
            pollfd(fd: context.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        do {
            while true {
                // Take everything queued; from here on, a new request wakes us through the eventfd.
                let (batch, closeRequest) = state.withLock { state in
                    let batch = state.queue
                    state.queue.removeAll(keepingCapacity: true)
                    state.sleeping = true
                    return (batch, state.closeRequest)
                }
                if let closeRequest { return closeRequest }
                if !batch.isEmpty {
                    let now = clock.now
                    for request in batch {
                        try context.append(request.bytes)
                        if request.replies == 0 {
                            request.completion(.success([]))
                        } else {
                            inFlight.append(InFlight(
                                remaining: request.replies, collected: [],
                                deadline: request.timeout.map { now + $0 }, completion: request.completion))
                        }
                    }
                    try context.flush()
                }

                var timeoutMilliseconds: Int32 = -1
                if let deadline = inFlight.lazy.compactMap(\.deadline).min() {
                    let remaining = clock.now.duration(to: deadline)
                    if remaining <= .zero {
                        return BrokerError(.timedOut, "redis: no reply within the command timeout; connection reset")
                    }
                    timeoutMilliseconds = Int32(clamping: remaining.redisMilliseconds)
                }
                descriptors[0].events = Int16(POLLIN) | (context.hasPendingOutput ? Int16(POLLOUT) : 0)
                descriptors[0].revents = 0
                descriptors[1].revents = 0
                let ready = poll(&descriptors, 2, timeoutMilliseconds)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return BrokerError(.connectionLost, "redis: poll failed (errno \(errno))")
                }
                if descriptors[1].revents != 0 {
                    var count: UInt64 = 0
                    _ = Glibc.read(wakeDescriptor, &count, 8)
                }
                let socketEvents = descriptors[0].revents
                if socketEvents & Int16(POLLOUT) != 0 { try context.flush() }
                if socketEvents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                    try context.fill()
                    while let reply = try context.nextReply() {
                        if let push = setup.pushHandler {
                            push(reply)
                            continue
                        }
                        guard !inFlight.isEmpty else {
                            return BrokerError(.unexpectedReply, "redis: a reply nobody asked for: \(reply)")
                        }
                        inFlight[inFlight.startIndex].collected.append(reply)
                        inFlight[inFlight.startIndex].remaining -= 1
                        if inFlight[inFlight.startIndex].remaining == 0 {
                            let done = inFlight.removeFirst()
                            done.completion(.success(done.collected))
                        }
                    }
                }
            }
        } catch {
            return error
        }
    }
}
