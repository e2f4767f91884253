import Broker
import Synchronization

/// Connections that one caller holds at a time: blocking pops and moves (which park the
/// connection on the server) and optimistic transactions (whose `WATCH` belongs to the
/// connection). They never share the pipelined command connection, so a consumer blocked
/// for minutes stalls nobody else.
///
/// Up to ``RedisConfiguration/dedicatedPoolSize`` idle connections are kept; beyond that a
/// returned connection is closed. There is no cap on connections in use: each blocked caller
/// holds one, as each `BRPOP` client does with Redis.
final class DedicatedPool: Sendable {
    private struct State {
        var idle: [RedisConnection] = []
        var open: [ObjectIdentifier: RedisConnection] = [:]
        var shutDown = false
        var opened = 0
    }

    private let capacity: Int
    private let opener: @Sendable (_ name: String, _ onClose: @escaping @Sendable (BrokerError) -> Void) async throws
        -> RedisConnection
    private let state = Mutex(State())

    init(capacity: Int,
         opener: @escaping @Sendable (String, @escaping @Sendable (BrokerError) -> Void) async throws -> RedisConnection)
    {
        self.capacity = max(0, capacity)
        self.opener = opener
    }

    /// An idle healthy connection, or a new one.
    func checkout() async throws(BrokerError) -> RedisConnection {
        let (reused, number) = state.withLock { state -> (RedisConnection?, Int) in
            while let connection = state.idle.popLast() {
                if connection.closedReason == nil { return (connection, 0) }
            }
            state.opened += 1
            return (nil, state.opened)
        }
        if let reused { return reused }
        if state.withLock({ $0.shutDown }) { throw BrokerError(.shutDown, "the redis broker was shut down") }
        let connection: RedisConnection
        do {
            connection = try await opener("dedicated-\(number)") { [weak self] _ in self?.forget(number) }
        } catch let error as BrokerError {
            throw BrokerError(.connectionLost, error.message)
        } catch {
            throw BrokerError(.connectionLost, "\(error)")
        }
        let keep = state.withLock { state in
            guard !state.shutDown else { return false }
            if connection.closedReason == nil { state.open[ObjectIdentifier(connection)] = connection }
            return true
        }
        guard keep else {
            connection.close(BrokerError(.shutDown, "the redis broker was shut down"))
            throw BrokerError(.shutDown, "the redis broker was shut down")
        }
        return connection
    }

    /// ``checkout()`` with the outcome as a value.
    func checkoutResult() async -> Result<RedisConnection, BrokerError> {
        do {
            return .success(try await checkout())
        } catch {
            return .failure(error)
        }
    }

    private func forget(_ number: Int) {
        // Connections are removed lazily by identity in `checkin`/`shutdown`; closed ones are
        // skipped there, so nothing to do here beyond letting go of our reference.
        state.withLock { state in
            state.open = state.open.filter { $0.value.closedReason == nil }
        }
    }

    /// Returns a connection that is in a clean state (nothing pending, nothing watched).
    func checkin(_ connection: RedisConnection) {
        let close = state.withLock { state -> Bool in
            if state.shutDown || connection.closedReason != nil || state.idle.count >= capacity {
                state.open[ObjectIdentifier(connection)] = nil
                return true
            }
            state.idle.append(connection)
            return false
        }
        if close { connection.close(BrokerError(.connectionLost, "dedicated connection released")) }
    }

    /// Closes a connection whose state is unknown (a failed or abandoned exchange).
    func discard(_ connection: RedisConnection, _ reason: BrokerError) {
        state.withLock { state in state.open[ObjectIdentifier(connection)] = nil }
        connection.close(reason)
    }

    /// Closes every connection, idle or in use; their callers fail with ``BrokerError/Code/shutDown``.
    func shutdown() {
        let all = state.withLock { state in
            state.shutDown = true
            state.idle = []
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        for connection in all { connection.close(BrokerError(.shutDown, "the redis broker was shut down")) }
    }
}
