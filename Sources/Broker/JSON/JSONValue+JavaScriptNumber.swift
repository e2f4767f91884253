extension JSONValue {
    /// The value as JavaScript's `Number(value)` gives it (ECMA-262 ToNumber, arrays and
    /// objects through their string form): `"100"` is 100, `" 1e3 "` 1000, `"0x10"` 16, `""`,
    /// `null`, `false` and `[]` are 0, `true` is 1, `[5]` is 5; anything else is NaN.
    ///
    /// For handlers that keep the original Node.js system's checks, such as its demo job's
    /// `payload.amount > 0`, which accepted the string an HTML form sends.
    public var javaScriptNumber: Double {
        switch self {
        case .null: return 0
        case .bool(let value): return value ? 1 : 0
        case .integer(let value): return Double(value)
        case .number(let value): return value
        case .string(let text): return Self.javaScriptNumber(text)
        case .array(let elements):
            // ToPrimitive joins the elements with commas: two or more never read as a number.
            guard let only = elements.first else { return 0 }
            guard elements.count == 1 else { return .nan }
            switch only {
            case .null: return 0  // [null] joins to ""
            case .bool, .object: return .nan  // "true", "[object Object]"
            default: return only.javaScriptNumber
            }
        case .object: return .nan  // "[object Object]"
        }
    }

    /// ECMA-262 StringToNumber: surrounding white space ignored, empty is 0, `Infinity` with an
    /// optional sign, `0x`/`0o`/`0b` integers, decimal literals; NaN otherwise.
    static func javaScriptNumber(_ text: String) -> Double {
        let trimmed = text.unicodeScalars.drop(while: isJavaScriptSpace).reversed().drop(while: isJavaScriptSpace).reversed()
        let literal = String(String.UnicodeScalarView(trimmed))
        if literal.isEmpty { return 0 }
        switch literal {
        case "Infinity", "+Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: break
        }
        let bytes = Array(literal.utf8)
        if bytes.count > 2, bytes[0] == UInt8(ascii: "0") {
            let radix: Double? =
                switch bytes[1] | 0x20 {
                case UInt8(ascii: "x"): 16
                case UInt8(ascii: "o"): 8
                case UInt8(ascii: "b"): 2
                default: nil
                }
            if let radix {
                var value = 0.0
                for byte in bytes.dropFirst(2) {
                    guard let digit = hexDigit(byte), Double(digit) < radix else { return .nan }
                    value = value * radix + Double(digit)
                }
                return value
            }
        }
        guard isDecimalLiteral(bytes) else { return .nan }
        return Double(literal) ?? .nan
    }

    /// StrDecimalLiteral without `Infinity`: an optional sign, digits with at most one point and
    /// at least one digit, then an optional exponent with digits.
    private static func isDecimalLiteral(_ bytes: [UInt8]) -> Bool {
        var index = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        var digits = 0
        while index < bytes.count, isDigit(bytes[index]) { index += 1; digits += 1 }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, isDigit(bytes[index]) { index += 1; digits += 1 }
        }
        guard digits > 0 else { return false }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            var exponentDigits = 0
            while index < bytes.count, isDigit(bytes[index]) { index += 1; exponentDigits += 1 }
            guard exponentDigits > 0 else { return false }
        }
        return index == bytes.count
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }

    /// ECMA-262 WhiteSpace and LineTerminator: what StringToNumber trims.
    private static func isJavaScriptSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0xFEFF, 0x2028, 0x2029: return true
        default: return scalar.properties.generalCategory == .spaceSeparator
        }
    }
}
