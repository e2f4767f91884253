extension Broker {
    /// The value of `key`, or `nil` if it does not exist.
    public func get(_ key: String) async throws -> [UInt8]? {
        try await execute(.get(key: key)).value()
    }

    /// Sets `key` to `value`.
    /// - Returns: `false` if `condition` prevented the write.
    @discardableResult
    public func set(
        _ key: String, to value: [UInt8], expiry: Expiry = .never, condition: SetCondition = .always
    ) async throws -> Bool {
        try await execute(.set(key: key, value: value, expiry: expiry, condition: condition)).isOK()
    }

    /// Sets `key` to a string's UTF-8 bytes.
    @discardableResult
    public func set(
        _ key: String, to value: String, expiry: Expiry = .never, condition: SetCondition = .always
    ) async throws -> Bool {
        try await set(key, to: Array(value.utf8), expiry: expiry, condition: condition)
    }

    /// The value of `key` as UTF-8 text.
    public func string(_ key: String) async throws -> String? {
        try await get(key).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Deletes `keys`; returns how many existed.
    @discardableResult
    public func delete(_ keys: String...) async throws -> Int {
        try await delete(keys)
    }

    /// Deletes `keys`; returns how many existed.
    @discardableResult
    public func delete(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await execute(.delete(keys: keys)).integer())
    }

    /// Sets `key` to expire after `duration`. Returns `false` if the key does not exist.
    @discardableResult
    public func expire(_ key: String, after duration: Duration) async throws -> Bool {
        try await execute(.expire(key: key, after: duration)).integer() == 1
    }

    /// The remaining life of `key`.
    public func timeToLive(of key: String) async throws -> TimeToLive {
        let milliseconds = try await execute(.timeToLive(key: key)).integer()
        switch milliseconds {
        case -2: return .missing
        case -1: return .persistent
        default: return .expiresIn(.milliseconds(milliseconds))
        }
    }

    /// Adds `amount` to the integer at `key` (a missing key counts as 0) and returns the result.
    @discardableResult
    public func increment(_ key: String, by amount: Int64 = 1) async throws -> Int64 {
        try await execute(.increment(key: key, by: amount)).integer()
    }
}
