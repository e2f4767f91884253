/// A Redis glob pattern over channel names, as `PSUBSCRIBE` matches them.
///
/// `*` matches any run of characters (also none), `?` any one character, `[abc]` one of the
/// listed, `[^a]` any but those, `[a-z]` a range, and `\` makes the next character literal.
/// Matching works on bytes, as Redis does. An unclosed `[` matches the rest literally as far
/// as Redis would (it treats the end of the pattern as the end of the class).
public struct ChannelPattern: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let bytes: [UInt8]

    public init(_ pattern: String) {
        self.pattern = pattern
        self.bytes = Array(pattern.utf8)
    }

    public var description: String { pattern }

    /// Whether `channel` matches the pattern.
    public func matches(_ channel: String) -> Bool {
        var channel = channel
        return channel.withUTF8 { text in
            bytes.withUnsafeBufferPointer { pattern in
                var skipLongerMatches = false
                return Self.match(pattern[...], text[...], skipLongerMatches: &skipLongerMatches)
            }
        }
    }

    /// A port of Redis's `stringmatchlen` (util.c), without the case-insensitive flag.
    ///
    /// `skipLongerMatches` is Redis's guard against exponential backtracking: once the rest of
    /// the pattern failed against every suffix after a `*`, trying longer prefixes for an
    /// earlier `*` cannot succeed either, so every pending `*` gives up at once.
    private static func match(
        _ pattern: Slice<UnsafeBufferPointer<UInt8>>,
        _ text: Slice<UnsafeBufferPointer<UInt8>>,
        skipLongerMatches: inout Bool
    ) -> Bool {
        var p = pattern.startIndex
        var s = text.startIndex
        let pEnd = pattern.endIndex
        let sEnd = text.endIndex
        while p < pEnd && s < sEnd {
            switch pattern[p] {
            case UInt8(ascii: "*"):
                while p + 1 < pEnd && pattern[p + 1] == UInt8(ascii: "*") { p += 1 }
                if p + 1 == pEnd { return true }
                var start = s
                while start < sEnd {
                    if match(pattern[(p + 1)...], text[start...], skipLongerMatches: &skipLongerMatches) { return true }
                    if skipLongerMatches { return false }
                    start += 1
                }
                skipLongerMatches = true
                return false
            case UInt8(ascii: "?"):
                s += 1
            case UInt8(ascii: "["):
                p += 1
                let negate = p < pEnd && pattern[p] == UInt8(ascii: "^")
                if negate { p += 1 }
                var matched = false
                while true {
                    if p >= pEnd {
                        p -= 1  // Redis: the pattern ended inside the class; treat it as closed.
                        break
                    }
                    let c = pattern[p]
                    if c == UInt8(ascii: "\\") && p + 1 < pEnd {
                        p += 1
                        if pattern[p] == text[s] { matched = true }
                    } else if c == UInt8(ascii: "]") {
                        break
                    } else if p + 2 < pEnd && pattern[p + 1] == UInt8(ascii: "-") {
                        var low = c
                        var high = pattern[p + 2]
                        if low > high { swap(&low, &high) }
                        p += 2
                        if text[s] >= low && text[s] <= high { matched = true }
                    } else if c == text[s] {
                        matched = true
                    }
                    p += 1
                }
                if negate { matched.toggle() }
                if !matched { return false }
                s += 1
            case UInt8(ascii: "\\") where p + 1 < pEnd:
                p += 1
                if pattern[p] != text[s] { return false }
                s += 1
            default:
                if pattern[p] != text[s] { return false }
                s += 1
            }
            p += 1
            if s == sEnd {
                while p < pEnd && pattern[p] == UInt8(ascii: "*") { p += 1 }
                break
            }
        }
        return p == pEnd && s == sEnd
    }
}
