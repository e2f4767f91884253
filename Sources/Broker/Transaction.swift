/// What the body of an optimistic transaction decided: the commands to apply atomically (none
/// is fine: a read-only decision) and a value to hand back to the caller.
public struct Transaction<Value>: Sendable where Value: Sendable {
    public var commands: [BrokerCommand]
    public var value: Value

    public init(commands: [BrokerCommand], value: Value) {
        self.commands = commands
        self.value = value
    }
}

extension Transaction where Value == Void {
    public init(commands: [BrokerCommand]) {
        self.init(commands: commands, value: ())
    }
}

/// The outcome of one ``Broker/attemptTransaction(watching:_:)``.
public enum TransactionAttempt<Value>: Sendable where Value: Sendable {
    /// The commands were applied (atomically); `replies` has one reply per command.
    case committed(Value, replies: [Reply])
    /// A watched key changed meanwhile; nothing was applied.
    case conflicted
}

extension Broker {
    /// An optimistic transaction with retries: watches `keys`, runs `body` (which reads what
    /// it needs through this broker) and applies the commands it returns atomically, unless a
    /// watched key changed meanwhile, in which case it runs `body` again.
    ///
    /// This is how several gateway nodes apply the same update exactly once: each reads,
    /// decides, and only one decision built on the current state commits.
    ///
    /// - Throws: ``BrokerError/Code/transactionConflict`` after `maxAttempts` conflicts, or
    ///   whatever `body` throws (nothing is applied then).
    nonisolated(nonsending) public func transaction<Value: Sendable>(
        watching keys: [String],
        maxAttempts: Int = 64,
        _ body: () async throws -> Transaction<Value>
    ) async throws -> (value: Value, replies: [Reply]) {
        for attempt in 1...max(1, maxAttempts) {
            switch try await attemptTransaction(watching: keys, body) {
            case .committed(let value, let replies):
                return (value, replies)
            case .conflicted:
                // Back off a little so contending writers spread out instead of colliding again.
                if attempt > 2 {
                    try await Task.sleep(for: .microseconds(Int.random(in: 0...(50 * min(attempt, 20)))))
                }
            }
        }
        throw BrokerError(.transactionConflict, "gave up after \(maxAttempts) conflicting attempts on \(keys)")
    }

    /// Atomically replaces the value of `key` with `transform(current)`: a read-modify-write
    /// that loses no concurrent update. Returning `nil` from `transform` leaves the key as it is.
    ///
    /// - Parameter expiry: applied with the new value (default: keep the key's TTL).
    /// - Returns: the value written, or `nil` if `transform` chose not to write.
    @discardableResult
    nonisolated(nonsending) public func update(
        _ key: String,
        expiry: Expiry = .keepExisting,
        _ transform: ([UInt8]?) throws -> [UInt8]?
    ) async throws -> [UInt8]? {
        try await transaction(watching: [key]) {
            let current = try await get(key)
            guard let next = try transform(current) else { return Transaction(commands: [], value: nil) }
            return Transaction(commands: [.set(key: key, value: next, expiry: expiry, condition: .always)], value: next)
        }.value
    }
}
