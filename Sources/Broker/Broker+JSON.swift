public import Foundation

extension Broker {
    /// Decodes the JSON value at `key`, or `nil` if the key does not exist.
    public func get<Value: Decodable>(
        _ key: String, as type: Value.Type, decoder: JSONDecoder = JSONDecoder()
    ) async throws -> Value? {
        guard let bytes = try await get(key) else { return nil }
        return try decoder.decode(Value.self, from: Data(bytes))
    }

    /// Stores `value` at `key` as JSON.
    @discardableResult
    public func set<Value: Encodable>(
        _ key: String, json value: Value, expiry: Expiry = .never, condition: SetCondition = .always,
        encoder: JSONEncoder = JSONEncoder()
    ) async throws -> Bool {
        try await set(key, to: Array(try encoder.encode(value)), expiry: expiry, condition: condition)
    }
}
