/// The position of an event in one user's event sequence, sent to clients as a decimal
/// string (`eventId`, SSE `id:`) and handed back by them on reconnect (`lastEventId`,
/// `Last-Event-ID`).
///
/// Ids come from a per-user counter on the broker (`ws:seq:user:<userId>`), incremented in
/// the same atomic transaction that appends the event to the user's log, so they increase
/// in log order whichever node routed the event. When the counter is missing (a new user, or
/// 24 h without events) it restarts at `now in ms × 1000`, so a restarted sequence still
/// continues above any id handed out before: clients never see ids go backwards.
public struct EventID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: Int64

    public init(_ value: Int64) {
        self.value = value
    }

    /// Parses a decimal id as clients send it back; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let value = Int64(text)
        else { return nil }
        self.value = value
    }

    /// The id that follows `current` (the counter's stored value), or the seed of a new
    /// sequence when there is none.
    public static func next(after current: EventID?, now: Timestamp) -> EventID {
        if let current { return EventID(current.value &+ 1) }
        return EventID(now.milliseconds * 1000)
    }

    /// Whether this system could have issued the id by `now`: sequences are seeded at `now in
    /// ms × 1000` and grow by one per event, so an id more than a day's worth ahead (or
    /// negative) is another service's number. Taken for ours, it would become the user's
    /// delivered watermark and hide their next offline events from replay.
    public func couldBeIssued(by now: Timestamp) -> Bool {
        value >= 0 && value / 1000 <= now.milliseconds + 86_400_000
    }

    public static func < (lhs: EventID, rhs: EventID) -> Bool { lhs.value < rhs.value }

    /// The later of two ids either of which may be missing (`nil` only when both are).
    public static func later(_ first: EventID?, _ second: EventID?) -> EventID? {
        guard let first, let second else { return first ?? second }
        return Swift.max(first, second)
    }

    public var description: String { String(value) }
}
