/// Walks JSON text without building values and tells where each top-level member's value lies.
///
/// A message that is routed on, not inspected — an emit message's `data`, spliced unchanged
/// into every connection's frame — need not become a `JSONValue` and be written out again.
/// It accepts exactly what ``JSONValue/parse(utf8:)`` accepts: the walk is
/// ``JSONByteParser``'s own grammar, with numbers, literals and strings that hold escapes or
/// non-ASCII checked by the very code that parses them.
enum JSONScanner {
    /// One member of the top-level object: its key and the bytes of its value.
    struct Member {
        var key: String
        var value: Range<Int>
    }

    /// The members of the object that `bytes` holds, in order (a repeated key appears
    /// twice), with the byte ranges of their values.
    /// - Throws: ``JSONSyntaxError`` when `bytes` is not one valid JSON object.
    static func members(ofObject bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> [Member] {
        var parser = JSONByteParser(bytes: bytes)
        parser.skipWhitespace()
        guard parser.index < bytes.count, bytes[parser.index] == UInt8(ascii: "{") else {
            throw parser.error("expected an object")
        }
        var members: [Member] = []
        // The top-level object is at depth 1, as in `parseObject`.
        try parser.skipContainer(closing: UInt8(ascii: "}"), members: true, depth: 1) { parser, key, start in
            members.append(Member(key: key, value: start..<parser.index))
        }
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected bytes after the value") }
        return members
    }
}

extension JSONByteParser {
    /// Moves past one value, checking it as ``parseValue(depth:)`` would, without building it.
    mutating func skipValue(depth: Int) throws(JSONSyntaxError) {
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try skipContainer(closing: UInt8(ascii: "}"), members: true, depth: depth + 1)
        case UInt8(ascii: "["): try skipContainer(closing: UInt8(ascii: "]"), members: false, depth: depth + 1)
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try parseNumber()
        default: throw error("unexpected character")
        }
    }

    /// Moves past an object (`members`) or an array at its opening bracket, as `parseObject` and
    /// `parseArray` read them. For an object, `member` (if given) gets each key and where its
    /// value started, right after the value.
    mutating func skipContainer(
        closing: UInt8, members: Bool, depth: Int,
        member: ((inout JSONByteParser, String, Int) -> Void)? = nil
    ) throws(JSONSyntaxError) {
        guard depth <= JSONValue.maximumParseDepth else { throw error("nesting too deep") }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == closing {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            var key = ""
            if members {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
                if member != nil { key = try parseString() } else { try skipString() }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
            }
            let start = index
            try skipValue(depth: depth)
            member?(&self, key, start)
            guard try continuesContainer(closing: closing) else { return }
        }
    }

    /// Moves past a string at its opening quote. Plain ASCII is checked here; escapes,
    /// non-ASCII bytes and errors go through ``parseString()``, so the rules are the parser's.
    mutating func skipString() throws(JSONSyntaxError) {
        let start = index
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            index += 1
        }
        index = start
        _ = try parseString()
    }
}
