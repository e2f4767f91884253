import NIOCore

/// Small helpers for writing JSON text by hand on hot paths (frames and SSE lines), where
/// building a dictionary and running an encoder for a fixed envelope would be wasted work.
enum JSONText {
    /// Writes ``quoted(_:)`` of `value` into `buffer`, copying the bytes as they are when
    /// nothing needs escaping (event names almost never do).
    static func writeQuoted(_ value: String, into buffer: inout ByteBuffer) {
        if needsNoEscaping(value) {
            buffer.writeInteger(UInt8(ascii: "\""))
            buffer.writeString(value)
            buffer.writeInteger(UInt8(ascii: "\""))
        } else {
            buffer.writeString(quoted(value))
        }
    }

    /// `value` as a JSON string literal, quotes included.
    static func quoted(_ value: String) -> String {
        // Event names, ids and timestamps almost never need escaping: copy them whole.
        if needsNoEscaping(value) {
            return "\"" + value + "\""
        }
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// Whether `value` is its own JSON string body: no control character, quote or backslash.
    private static func needsNoEscaping(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }
}
