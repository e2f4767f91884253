public import Broker
import Synchronization

extension RedisBroker {
    /// `WATCH` on a dedicated connection, `body`, then `MULTI`, the atomic batch script (so a
    /// failing command applies nothing; see ``AtomicBatch``) and `EXEC` in one round trip. A
    /// `nil` `EXEC` is a conflict.
    ///
    /// The body's reads through this broker go over the same connection, and the `WATCH` goes
    /// out in the same write as the first of them (see ``WatchedConnection``): a transaction
    /// that reads, decides and writes costs two round trips. The script runs by `EVALSHA`; if
    /// the server lost it (`SCRIPT FLUSH`), it is loaded again and the attempt reported as a
    /// conflict, so ``Broker/transaction(watching:maxAttempts:_:)`` runs the body again.
    /// The connection goes back to the pool unwatched on every path, or is closed when its
    /// state is unknown.
    public nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String],
        _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        let connection = try await dedicated.checkout()
        let watched = WatchedConnection(connection: connection, owner: ObjectIdentifier(self), keys: keys)
        let transaction: Transaction<Value>
        var encoder = RESPEncoder(capacity: 1024)
        do {
            transaction = try await WatchedConnection.$current.withValue(watched) { try await body() }
            encoder.append("MULTI")
            if !transaction.commands.isEmpty {
                try encoder.appendAtomicBatch(transaction.commands, hashes: scriptHashes.withLock { $0 })
            }
            encoder.append("EXEC")
        } catch {
            await release(watched)
            throw error
        }
        let replies: [RESPValue]
        do {
            replies = try await watched.send(encoder.bytes, replies: encoder.commandCount, timeout: configuration.commandTimeout)
        } catch {
            dedicated.discard(connection, error)
            throw error
        }
        // EXEC always ends the WATCH.
        for reply in replies.dropLast() {
            if case .error(let message) = reply {
                dedicated.checkin(connection)
                throw RESPValue.brokerError(fromServerMessage: message)
            }
        }
        switch replies.last {
        case .null?:
            dedicated.checkin(connection)
            return .conflicted
        case .array(let results)?:
            guard let scriptResult = results.first else {
                dedicated.checkin(connection)
                return .committed(transaction.value, replies: [])
            }
            if case .error(let message) = scriptResult, message.hasPrefix("NOSCRIPT") {
                // Nothing ran. Load the script again, then let the caller try once more.
                await reloadScript(on: connection)
                return .conflicted
            }
            dedicated.checkin(connection)
            return .committed(
                transaction.value,
                replies: try AtomicBatch.replies(
                    Self.batchReplies(scriptResult, count: transaction.commands.count), for: transaction.commands))
        case let other:
            dedicated.checkin(connection)
            if case .error(let message)? = other { throw RESPValue.brokerError(fromServerMessage: message) }
            throw BrokerError(.unexpectedReply, "redis: EXEC answered \(String(describing: other))")
        }
    }

    /// The body's connection when the current task runs a transaction body of this broker.
    var watchedConnection: WatchedConnection? {
        guard let watched = WatchedConnection.current, watched.owner == ObjectIdentifier(self) else { return nil }
        return watched
    }

    private func reloadScript(on connection: RedisConnection) async {
        var encoder = RESPEncoder()
        encoder.append(strings: ["SCRIPT", "LOAD", AtomicBatch.script])
        encoder.append(strings: ["SCRIPT", "LOAD", AtomicBatch.leanScript])
        do {
            _ = try await connection.send(encoder.bytes, replies: 2, timeout: configuration.commandTimeout)
            dedicated.checkin(connection)
        } catch {
            dedicated.discard(connection, error)
        }
    }

    private func release(_ watched: WatchedConnection) async {
        let connection = watched.connection
        if watched.isBroken { return dedicated.discard(connection, BrokerError(.connectionLost, "transaction connection failed")) }
        guard watched.watchSent else { return dedicated.checkin(connection) }
        var encoder = RESPEncoder()
        encoder.append("UNWATCH")
        do {
            _ = try await connection.send(encoder.bytes, replies: 1, timeout: configuration.commandTimeout)
            dedicated.checkin(connection)
        } catch {
            dedicated.discard(connection, error)
        }
    }
}
