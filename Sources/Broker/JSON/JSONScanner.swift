/// Walks JSON text without building values: validates it (the same grammar and nesting limit
/// as ``JSONValue/parse(utf8:)``) and tells where each top-level member's value lies.
///
/// A message that is routed on, not inspected — an emit message's `data`, spliced unchanged
/// into every connection's frame — need not become a `JSONValue` and be written out again.
struct JSONScanner {
    /// One member of the top-level object: its key and the bytes of its value.
    struct Member {
        var key: String
        var value: Range<Int>
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The members of the object that `bytes` holds, in order (a repeated key appears
    /// twice), with the byte ranges of their values.
    /// - Throws: ``JSONSyntaxError`` when `bytes` is not one valid JSON object.
    static func members(ofObject bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> [Member] {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek == UInt8(ascii: "{") else { throw scanner.error("expected an object") }
        scanner.index += 1
        var members: [Member] = []
        scanner.skipWhitespace()
        if scanner.peek == UInt8(ascii: "}") {
            scanner.index += 1
        } else {
            while true {
                scanner.skipWhitespace()
                let keyStart = scanner.index
                let escaped = try scanner.skipString()
                let key: String
                if escaped {
                    guard case .string(let text) = try JSONValue.parse(utf8: UnsafeBufferPointer(rebasing: bytes[keyStart..<scanner.index])) else {
                        throw scanner.error("expected a string key")
                    }
                    key = text
                } else {
                    key = String(decoding: UnsafeBufferPointer(rebasing: bytes[(keyStart + 1)..<(scanner.index - 1)]), as: UTF8.self)
                }
                scanner.skipWhitespace()
                guard scanner.peek == UInt8(ascii: ":") else { throw scanner.error("expected ':'") }
                scanner.index += 1
                scanner.skipWhitespace()
                let valueStart = scanner.index
                try scanner.skipValue(depth: 1)
                members.append(Member(key: key, value: valueStart..<scanner.index))
                scanner.skipWhitespace()
                if scanner.peek == UInt8(ascii: ",") {
                    scanner.index += 1
                    continue
                }
                guard scanner.peek == UInt8(ascii: "}") else { throw scanner.error("expected ',' or '}'") }
                scanner.index += 1
                break
            }
        }
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else { throw scanner.error("unexpected bytes after the value") }
        return members
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func error(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: index, reason: reason)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func skipValue(depth: Int) throws(JSONSyntaxError) {
        guard depth <= JSONValue.maximumParseDepth else { throw error("nesting too deep") }
        guard let byte = peek else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "\""):
            _ = try skipString()
        case UInt8(ascii: "{"): try skipContainer(closing: UInt8(ascii: "}"), members: true, depth: depth)
        case UInt8(ascii: "["): try skipContainer(closing: UInt8(ascii: "]"), members: false, depth: depth)
        case UInt8(ascii: "t"): try skipLiteral("true")
        case UInt8(ascii: "f"): try skipLiteral("false")
        case UInt8(ascii: "n"): try skipLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
        default: throw error("unexpected character")
        }
    }

    /// Skips an object (`members`: `"key": value` entries) or an array, at its opening bracket.
    private mutating func skipContainer(closing: UInt8, members: Bool, depth: Int) throws(JSONSyntaxError) {
        index += 1
        skipWhitespace()
        if peek == closing {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            if members {
                _ = try skipString()
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
            }
            try skipValue(depth: depth + 1)
            skipWhitespace()
            if peek == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard peek == closing else { throw error("expected ',' or '\(Character(Unicode.Scalar(closing)))'") }
            index += 1
            return
        }
    }

    /// Skips a string (at its opening quote); returns whether it holds escapes.
    private mutating func skipString() throws(JSONSyntaxError) -> Bool {
        guard peek == UInt8(ascii: "\"") else { throw error("expected a string") }
        index += 1
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return escaped
            case UInt8(ascii: "\\"):
                escaped = true
                index += 1
                guard let next = peek else { throw error("unterminated escape") }
                switch next {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    for _ in 0..<4 {
                        guard let hex = peek, hex.isHexDigit else { throw error("invalid \\u escape") }
                        index += 1
                    }
                default:
                    throw error("invalid escape")
                }
            case 0..<0x20:
                throw error("control character in a string")
            default:
                index += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func skipNumber() throws(JSONSyntaxError) {
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, first.isDigit else { throw error("invalid number") }
        index += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard peek?.isDigit == true else { throw error("invalid number") }
            skipDigits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard peek?.isDigit == true else { throw error("invalid number") }
            skipDigits()
        }
    }

    private mutating func skipDigits() {
        while let byte = peek, byte.isDigit { index += 1 }
    }

    private mutating func skipLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("invalid literal") }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
            throw error("invalid literal")
        }
        index += count
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    fileprivate var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f")) || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
