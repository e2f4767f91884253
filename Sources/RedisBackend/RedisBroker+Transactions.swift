public import Broker

extension RedisBroker {
    /// `WATCH` on a dedicated connection, `body` (which reads through the shared command
    /// connection: a read that sees a newer value than the watch began with means the key was
    /// modified, so `EXEC` refuses anyway), then `MULTI`, the atomic batch script (so a failing
    /// command applies nothing; see ``AtomicBatch``) and `EXEC` in one round trip. A `nil` `EXEC`
    /// is a conflict. The connection goes back to the pool unwatched on every path, or is
    /// closed when its state is unknown.
    public nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String],
        _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        let connection = try await dedicated.checkout()
        do {
            if !keys.isEmpty {
                var watch = RESPEncoder()
                watch.append(strings: ["WATCH"] + keys)
                let reply = try await connection.send(watch.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
                _ = try reply.reply()
            }
        } catch {
            dedicated.discard(connection, BrokerError(.connectionLost, "WATCH failed"))
            throw error
        }
        let transaction: Transaction<Value>
        do {
            transaction = try await body()
        } catch {
            await release(connection, unwatch: !keys.isEmpty)
            throw error
        }
        let arguments: [[UInt8]]
        do {
            arguments = AtomicBatch.scriptArguments(try transaction.commands.map { try $0.redisArguments() })
        } catch {
            await release(connection, unwatch: !keys.isEmpty)
            throw error
        }
        var encoder = RESPEncoder(capacity: 4096)
        encoder.append("MULTI")
        if !transaction.commands.isEmpty {
            encoder.append([Array("EVAL".utf8), Array(AtomicBatch.script.utf8)] + arguments)
        }
        encoder.append("EXEC")
        let replies: [RESPValue]
        do {
            replies = try await connection.send(
                encoder.bytes, replies: encoder.commandCount, timeout: configuration.commandTimeout)
        } catch {
            dedicated.discard(connection, error)
            throw error
        }
        dedicated.checkin(connection)  // EXEC always ends the WATCH
        for reply in replies.dropLast() {
            if case .error(let message) = reply { throw RESPValue.brokerError(fromServerMessage: message) }
        }
        switch replies.last {
        case .null?:
            return .conflicted
        case .array(let results)?:
            guard let scriptResult = results.first else {
                return .committed(transaction.value, replies: [])
            }
            return .committed(
                transaction.value,
                replies: try AtomicBatch.replies(
                    Self.batchReplies(scriptResult, count: transaction.commands.count), for: transaction.commands))
        case let other:
            if case .error(let message)? = other { throw RESPValue.brokerError(fromServerMessage: message) }
            throw BrokerError(.unexpectedReply, "redis: EXEC answered \(String(describing: other))")
        }
    }

    private func release(_ connection: RedisConnection, unwatch: Bool) async {
        guard unwatch else { return dedicated.checkin(connection) }
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
