/// One row of the glob table: does `pattern` match `channel`?
public struct GlobCase: Sendable, CustomStringConvertible {
    public let pattern: String
    public let channel: String
    public let matches: Bool

    public init(_ pattern: String, _ channel: String, _ matches: Bool) {
        self.pattern = pattern
        self.channel = channel
        self.matches = matches
    }

    public var description: String { "\"\(pattern)\" \(matches ? "matches" : "does not match") \"\(channel)\"" }
}

extension BrokerConformance {
    /// How Redis 7 `PSUBSCRIBE` matches, each row observed on redis-server 7.0.15 (a pattern
    /// subscriber, a `PUBLISH` to the channel, the receiver count). Shared by the
    /// `ChannelPattern` unit tests and the pattern-subscription conformance case.
    public static let globTable: [GlobCase] = [
        GlobCase("*", "news", true),
        GlobCase("*", "*", true),
        GlobCase("**", "x", true),
        GlobCase("*", "", false),  // Redis: an empty channel matches no pattern but the empty one
        GlobCase("", "", true),
        GlobCase("", "a", false),
        GlobCase("a", "", false),
        GlobCase("?", "", false),
        GlobCase("?", "ab", false),
        GlobCase("h?llo", "hello", true),
        GlobCase("h?llo", "hllo", false),
        GlobCase("h?llo", "heello", false),
        GlobCase("h*llo", "hllo", true),
        GlobCase("h*llo", "heeeello", true),
        GlobCase("h*llo", "hellox", false),
        GlobCase("h[ae]llo", "hello", true),
        GlobCase("h[ae]llo", "hallo", true),
        GlobCase("h[ae]llo", "hillo", false),
        GlobCase("h[^e]llo", "hallo", true),
        GlobCase("h[^e]llo", "hello", false),
        GlobCase("h[a-b]llo", "hbllo", true),
        GlobCase("h[a-b]llo", "hcllo", false),
        GlobCase("h[z-a]llo", "hmllo", true),  // a reversed range is swapped
        GlobCase("h[z-a]llo", "hAllo", false),
        GlobCase("h\\*llo", "h*llo", true),
        GlobCase("h\\*llo", "hello", false),
        GlobCase("h\\?llo", "h?llo", true),
        GlobCase("h\\?llo", "hello", false),
        GlobCase("user:*:status", "user:42:status", true),
        GlobCase("user:*:status", "user::status", true),
        GlobCase("user:*:status", "user:42:status:x", false),
        GlobCase("user:*:status", "user:42:other", false),
        GlobCase("a*", "a", true),
        GlobCase("*a", "a", true),
        GlobCase("*ab", "aab", true),
        GlobCase("a*b*c", "axxbyyc", true),
        GlobCase("a*b*c", "axxbyy", false),
        GlobCase("*.*", "a.b", true),
        GlobCase("*.*", "ab", false),
        GlobCase("news.*", "news.", true),
        GlobCase("Hello", "hello", false),  // case-sensitive
        GlobCase("caf?", "café", false),  // bytes, not characters: é is two bytes
        GlobCase("caf??", "café", true),
        GlobCase("[abc]", "", false),
        GlobCase("[a", "a", true),  // an unclosed class ends with the pattern
        GlobCase("[", "[", false),
        GlobCase("[", "x", false),
        GlobCase("a\\", "a\\", true),  // a trailing backslash is literal
        GlobCase("[]]", "]", false),  // `]` right after `[` closes an empty class
        GlobCase("[\\]]", "]", true),
        GlobCase("[^]", "x", true),
        GlobCase("[a-]", "a", true),  // `a-]` is the range `]`..`a`, then the class is unclosed
        GlobCase("[a-]", "-", false),
        GlobCase("[!a]", "b", false),  // `!` is not negation in Redis
    ]
}
