public import Broker
import Logging
import Synchronization

extension RedisBroker {
    public func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue? {
        guard !queues.isEmpty else { throw BrokerError(.invalidArgument, "blocking pop needs at least one queue") }
        if let timeout, timeout <= .zero {
            // Do not wait (as the memory backend): one LMPOP over the queues, in order.
            let reply = try await immediate(["LMPOP", String(queues.count)] + queues + [end == .head ? "LEFT" : "RIGHT"])
            guard case .array(let parts) = reply, parts.count == 2, let queue = parts[0].text,
                case .array(let values) = parts[1], case .bulk(let value)? = values.first
            else {
                if case .null = reply { return nil }
                throw BrokerError(.unexpectedReply, "redis: LMPOP answered \(reply)")
            }
            return PoppedValue(queue: queue, value: value)
        }
        let reply = try await runBlocking(timeout: timeout) { seconds in
            [end == .head ? "BLPOP" : "BRPOP"] + queues + [seconds]
        }
        switch reply {
        case .null, .array([]): return nil
        case .array(let parts) where parts.count == 2:
            guard let queue = parts[0].text, case .bulk(let value) = parts[1] else { fallthrough }
            return PoppedValue(queue: queue, value: value)
        default:
            throw BrokerError(.unexpectedReply, "redis: a blocking pop answered \(reply)")
        }
    }

    public func blockingMove(
        from source: String, _ sourceEnd: QueueEnd, to destination: String, _ destinationEnd: QueueEnd,
        timeout: Duration?
    ) async throws -> [UInt8]? {
        if let timeout, timeout <= .zero {
            return try await execute(
                .move(source: source, sourceEnd: sourceEnd, destination: destination, destinationEnd: destinationEnd)
            ).value()
        }
        let reply = try await runBlocking(timeout: timeout) { seconds in
            ["BLMOVE", source, destination, sourceEnd.redisSide, destinationEnd.redisSide, seconds]
        }
        switch reply {
        case .null: return nil
        case .bulk(let value): return value
        default: throw BrokerError(.unexpectedReply, "redis: BLMOVE answered \(reply)")
        }
    }

    /// Runs a blocking command on a dedicated connection until it answers, its timeout passes
    /// or the task is cancelled.
    ///
    /// - A lost connection is not an error here: the command is retried on a fresh connection
    ///   (with backoff while Redis is down) until the deadline, so consumers resume after an outage.
    /// - Cancellation sends `CLIENT UNBLOCK` from the command connection: the server ends the
    ///   wait as a timeout and the connection stays clean and reusable. A value the server
    ///   handed over in the same instant is returned rather than lost.
    /// - A `nil` answer before the deadline (an `UNBLOCK` that raced with a previous user of
    ///   the connection) is not taken as a timeout: the command is issued again.
    /// - With a keep-alive interval, the command waits at most that long on the server and is
    ///   issued again, so a blocked connection sends a command as often as an idle one pings.
    ///   Redis spares blocked clients its `timeout`, but not once served: a client blocked
    ///   longer than `timeout` could be closed as idle in the instant between being handed a
    ///   value and being sent it, and the popped value was lost with the connection. It also
    ///   bounds the wait for a reply, so a server that hangs is found on a blocked connection too.
    private func runBlocking(timeout: Duration?, _ command: (String) -> [String]) async throws -> RESPValue {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + max($0, .zero) }
        var failures = 0
        while true {
            if Task.isCancelled { return .null }
            var wait: Duration?  // nil waits forever (Redis: 0)
            if let deadline {
                let remaining = clock.now.duration(to: deadline)
                if remaining <= .zero { return .null }
                wait = remaining
            }
            // Waits no longer than the keep-alive interval at a time (see ``RedisConfiguration/keepAliveInterval``).
            if let slice = configuration.keepAliveInterval, slice > .zero { wait = min(wait ?? slice, slice) }
            let seconds = wait?.redisSeconds ?? "0"
            let checkout = await dedicated.checkoutResult()
            guard case .success(let connection) = checkout else {
                if case .failure(let error) = checkout, error.code != .connectionLost { throw error }
                failures += 1
                guard await backoff(failures, deadline: deadline) else { return .null }
                continue
            }
            var encoder = RESPEncoder()
            encoder.append(command(seconds).map { Array($0.utf8) })
            let call = BlockedCall()
            let outcome: Result<[RESPValue], BrokerError> = await withTaskCancellationHandler {
                let replyTimeout = wait.map { $0 + configuration.commandTimeout }
                return await withCheckedContinuation { continuation in
                    connection.enqueue(.init(bytes: encoder.bytes, replies: 1, timeout: replyTimeout) { result in
                        call.finish()  // before the caller runs again: stop unblocking at once
                        continuation.resume(returning: result)
                    })
                }
            } onCancel: {
                unblock(connection, call)
            }
            call.finish()
            switch outcome {
            case .success(let replies):
                dedicated.checkin(connection)
                let reply = replies[0]
                if case .error(let message) = reply { throw RESPValue.brokerError(fromServerMessage: message) }
                if case .null = reply, !Task.isCancelled, let deadline,
                    clock.now.duration(to: deadline) > .milliseconds(20)
                {
                    continue  // unblocked early by a stale CLIENT UNBLOCK: wait again
                }
                if case .null = reply, !Task.isCancelled, deadline == nil { continue }
                return reply
            case .failure(let error):
                dedicated.discard(connection, error)
                let message = error.message
                if error.code == .shutDown { throw BrokerError(.shutDown, message) }
                if Task.isCancelled { return .null }
                logger.warning("redis blocking command lost its connection; retrying", metadata: ["error": "\(message)"])
                failures += 1
                guard await backoff(failures, deadline: deadline) else { return .null }
            }
        }
    }

    /// One non-blocking command on the shared connection, its error thrown.
    private func immediate(_ arguments: [String]) async throws -> RESPValue {
        var encoder = RESPEncoder()
        encoder.append(strings: arguments)
        let reply = try await commands.connection().send(encoder.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
        if case .error(let message) = reply { throw RESPValue.brokerError(fromServerMessage: message) }
        return reply
    }

    /// Sleeps before the next attempt; `false` if the deadline or a cancellation comes first.
    private func backoff(_ failures: Int, deadline: ContinuousClock.Instant?) async -> Bool {
        var delay = configuration.initialBackoff
        for _ in 1..<max(1, min(failures, 30)) where delay < configuration.maximumBackoff { delay *= 2 }
        delay = min(delay, configuration.maximumBackoff) * Double.random(in: 0.5...1.0)
        if let deadline { delay = min(delay, ContinuousClock().now.duration(to: deadline)) }
        do {
            try await Task.sleep(for: delay)
        } catch {
            return false
        }
        if let deadline, ContinuousClock().now >= deadline { return false }
        return true
    }

    /// Ends a blocked command on `connection` from the command connection. `CLIENT UNBLOCK`
    /// answers 0 when the command is not (yet) blocked on the server, for instance still on
    /// its way: then it is sent again until the call ends. Without a command connection, or
    /// when `CLIENT UNBLOCK` itself fails (Redis hangs, the command connection just closed),
    /// the blocked connection is closed instead.
    private func unblock(_ connection: RedisConnection, _ call: BlockedCall, attempt: Int = 1) {
        guard !call.isFinished else { return }
        guard attempt <= 10_000, let commandConnection = commands.current else {
            connection.close(BrokerError(.connectionLost, "blocking call cancelled"))
            return
        }
        var encoder = RESPEncoder()
        encoder.append("CLIENT", "UNBLOCK", String(connection.clientID))
        commandConnection.enqueue(.init(bytes: encoder.bytes, replies: 1, timeout: configuration.commandTimeout) {
            [weak self] result in
            switch result {
            case .success([.integer(1)]):
                return
            case .success:
                // Not blocked yet (its command still on the way): ask again. This runs when the
                // reply is read, so the retries do not nest.
                self?.unblock(connection, call, attempt: attempt + 1)
            case .failure:
                // Retrying here would fail the same way at once, in this same stack, up to the
                // attempt limit: a stack overflow when a hung Redis closed the connection.
                connection.close(BrokerError(.connectionLost, "blocking call cancelled"))
            }
        })
    }
}

/// Whether a blocking call has returned, so cancellation stops trying to unblock it.
final class BlockedCall: Sendable {
    private let finished = Atomic<Bool>(false)
    var isFinished: Bool { finished.load(ordering: .acquiring) }
    func finish() { finished.store(true, ordering: .releasing) }
}
