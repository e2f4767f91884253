/// Job ids: `<unix milliseconds>-<random>`, e.g. `1731304200000-a7f3e2k0q9` (SPEC §1).
///
/// The millisecond part is 13 digits until the year 2286, so ids sort by creation time as
/// plain strings. The random part is 10 base-36 characters (about 52 bits), drawn from the
/// system generator: unique across processes and nodes without coordination, even at
/// hundreds of thousands of jobs per second (the chance that two ids of the same millisecond
/// collide is about n²/7·10¹⁵).
public enum JobID {
    /// Characters of the random part.
    public static let randomLength = 10
    private static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)

    /// A new id for a job created at `time`.
    public static func make(at time: Timestamp = .now()) -> String {
        var generator = SystemRandomNumberGenerator()
        return make(at: time, using: &generator)
    }

    /// A new id drawing its random part from `generator` (deterministic in tests).
    public static func make<G: RandomNumberGenerator>(at time: Timestamp, using generator: inout G) -> String {
        var random = generator.next()
        var suffix = [UInt8](repeating: 0, count: randomLength)
        for index in 0..<randomLength {
            suffix[index] = alphabet[Int(random % 36)]
            random /= 36
        }
        return "\(time.milliseconds)-\(String(decoding: suffix, as: UTF8.self))"
    }

    /// The creation time encoded in `id`, or `nil` if `id` is not shaped like a job id.
    public static func creationTime(of id: String) -> Timestamp? {
        guard let dash = id.firstIndex(of: "-"), let milliseconds = Int64(id[..<dash]), milliseconds >= 0,
            id.index(after: dash) < id.endIndex
        else { return nil }
        return Timestamp(milliseconds: milliseconds)
    }

    /// What ``isAcceptable(_:)`` asks, for messages that say why an id was refused.
    public static let acceptableShape = "1-128 bytes without spaces or control characters"

    /// Whether `id` is safe to embed in a key: non-empty, at most 128 bytes, no spaces or
    /// control characters. Ids from other systems need not follow our shape to be accepted.
    public static func isAcceptable(_ id: String) -> Bool {
        let bytes = id.utf8
        return !bytes.isEmpty && bytes.count <= 128 && bytes.allSatisfy { $0 > 32 && $0 != 127 }
    }

    /// `id` as it may go into a log line: as it is when acceptable, else quoted with control
    /// characters escaped and cut to its first 64 characters, so an id pushed by a broken or
    /// hostile producer can neither forge log lines nor flood them.
    public static func loggable(_ id: String) -> String {
        if isAcceptable(id) { return id }
        let shown = id.prefix(64).debugDescription
        return id.count > 64 ? "\(shown)… (\(id.utf8.count) bytes)" : shown
    }
}
