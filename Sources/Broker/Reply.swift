/// A command's result, shaped as Redis answers it (RESP2).
public enum Reply: Sendable, Hashable {
    case ok
    case null
    case integer(Int64)
    case value([UInt8])
    case array([Reply])
    /// Only in non-atomic pipelines: this command failed, the others ran.
    case error(BrokerError)
}

extension Reply {
    /// The integer, or throws if the reply is not one.
    public func integer() throws -> Int64 {
        switch self {
        case .integer(let value): return value
        case .error(let error): throw error
        default: throw BrokerError(.unexpectedReply, "expected an integer, got \(self)")
        }
    }

    /// The bytes, `nil` for `.null`, or throws if the reply is neither.
    public func value() throws -> [UInt8]? {
        switch self {
        case .value(let bytes): return bytes
        case .null: return nil
        case .error(let error): throw error
        default: throw BrokerError(.unexpectedReply, "expected a value, got \(self)")
        }
    }

    /// The list of values, or throws if the reply is not one.
    public func values() throws -> [[UInt8]] {
        switch self {
        case .array(let replies): return try replies.map { try $0.value() ?? [] }
        case .error(let error): throw error
        default: throw BrokerError(.unexpectedReply, "expected an array, got \(self)")
        }
    }

    /// `true` for `.ok`, `false` for `.null` (a conditional `SET` that did not apply).
    public func isOK() throws -> Bool {
        switch self {
        case .ok: return true
        case .null: return false
        case .error(let error): throw error
        default: throw BrokerError(.unexpectedReply, "expected OK or null, got \(self)")
        }
    }
}
