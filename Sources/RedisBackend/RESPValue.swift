import Broker

/// One reply as the Redis wire protocol (RESP2) gives it, copied out of hiredis's reply
/// object on the I/O thread so that no C memory outlives the read.
enum RESPValue: Sendable, Hashable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RESPValue])

    /// The reply as the broker abstraction shapes it; `.error` becomes a thrown ``BrokerError``.
    func reply() throws(BrokerError) -> Reply {
        switch self {
        case .status(let text):
            return text == "OK" ? .ok : .value(Array(text.utf8))
        case .error(let message):
            throw Self.brokerError(fromServerMessage: message)
        case .integer(let value):
            return .integer(value)
        case .bulk(let bytes):
            return .value(bytes)
        case .null:
            return .null
        case .array(let elements):
            var replies: [Reply] = []
            replies.reserveCapacity(elements.count)
            for element in elements { replies.append(try element.reply()) }
            return .array(replies)
        }
    }

    /// Like ``reply()`` but a server error becomes `.error(…)` (for non-atomic pipelines).
    func replyCapturingError() -> Reply {
        do {
            return try reply()
        } catch {
            return .error(error)
        }
    }

    /// The text of a bulk or status reply.
    var text: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// Maps a Redis error line to the broker's error codes, keeping the server's words.
    static func brokerError(fromServerMessage message: String) -> BrokerError {
        let code: BrokerError.Code
        if message.hasPrefix("WRONGTYPE") {
            code = .wrongType
        } else if message.hasPrefix("OOM ") {
            code = .outOfMemory
        } else if message.hasPrefix("READONLY ") {
            code = .readOnly
        } else if message.contains("not an integer") || message.contains("would overflow") {
            code = .notAnInteger
        } else if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS")
            || message.contains("invalid password") || message.contains("invalid username-password")
        {
            code = .authenticationFailed
        } else if message.contains("invalid expire time") || message.contains("wrong number of arguments")
            || message.contains("out of range")
        {
            code = .invalidArgument
        } else {
            code = .serverError
        }
        return BrokerError(code, "redis: \(message)")
    }
}

/// Builds the RESP bytes of commands on the caller's thread, so the I/O thread only copies
/// them into hiredis's output buffer (`redisAppendFormattedCommand`).
struct RESPEncoder {
    private(set) var bytes: [UInt8] = []
    private(set) var commandCount = 0

    init(capacity: Int = 64) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ arguments: [[UInt8]]) {
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count)
        appendCRLF()
        for argument in arguments {
            bytes.append(UInt8(ascii: "$"))
            appendDecimal(argument.count)
            appendCRLF()
            bytes.append(contentsOf: argument)
            appendCRLF()
        }
        commandCount += 1
    }

    mutating func append(_ arguments: String...) {
        append(strings: arguments)
    }

    mutating func append(strings arguments: [String]) {
        append(arguments.map { Array($0.utf8) })
    }

    /// Starts a command of `count` arguments; follow with exactly `count` ``argument(_:)`` calls.
    mutating func header(_ count: Int) {
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(count)
        appendCRLF()
        commandCount += 1
    }

    mutating func argument(_ value: [UInt8]) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(value.count)
        appendCRLF()
        bytes.append(contentsOf: value)
        appendCRLF()
    }

    mutating func argument(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "$"))
            appendDecimal(utf8.count)
            appendCRLF()
            bytes.append(contentsOf: utf8)
            appendCRLF()
        }
    }

    mutating func argument(_ value: Int) {
        argument(Int64(value))
    }

    /// An integer argument in decimal, written in place (no `String` made for it).
    mutating func argument(_ value: Int64) {
        let magnitude = value.magnitude
        var digits = 1
        var bound: UInt64 = 10
        while digits < 20, magnitude >= bound {
            digits += 1
            bound = bound &* 10
        }
        let length = digits + (value < 0 ? 1 : 0)
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(length)
        appendCRLF()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        var rest = magnitude
        var index = start + digits - 1
        while rest > 0 {
            bytes[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
        appendCRLF()
    }

    private mutating func appendCRLF() {
        bytes.append(13)
        bytes.append(10)
    }

    /// A non-negative length or count in decimal, without going through `String`.
    private mutating func appendDecimal(_ value: Int) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
