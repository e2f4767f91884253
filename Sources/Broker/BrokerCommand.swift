/// One broker operation as a value, so that several can be pipelined or applied atomically
/// (``Broker/execute(_:atomically:)``). Each case names the Redis command it stands for and
/// the ``Reply`` it produces.
public enum BrokerCommand: Sendable, Hashable {
    // MARK: Queues

    /// `LPUSH`/`RPUSH`: pushes the values one after another (so `LPUSH a b` leaves `b` first).
    /// Reply: `.integer(length after push)`.
    case push([[UInt8]], end: QueueEnd, queue: String)
    /// `LPOP`/`RPOP`. Reply: `.value(popped)` or `.null`.
    case pop(end: QueueEnd, queue: String)
    /// `LMOVE`: pops from `source` and pushes onto `destination` atomically.
    /// Reply: `.value(moved)` or `.null` when `source` is empty.
    case move(source: String, sourceEnd: QueueEnd, destination: String, destinationEnd: QueueEnd)
    /// `LREM`: removes occurrences of `value`: `count > 0` the first `count` from the head,
    /// `count < 0` the last `|count|` from the tail, `0` all. Reply: `.integer(removed)`.
    case remove(value: [UInt8], count: Int, queue: String)
    /// `LLEN`. Reply: `.integer(length)` (0 for a missing key).
    case length(queue: String)
    /// `LRANGE`, inclusive, negative indices count from the tail (-1 is the last).
    /// Reply: `.array` of `.value`s.
    case range(queue: String, start: Int, stop: Int)
    /// `LTRIM`: keeps only the inclusive range. Reply: `.ok`.
    case trim(queue: String, start: Int, stop: Int)

    // MARK: Keys

    /// `GET`. Reply: `.value(bytes)` or `.null`.
    case get(key: String)
    /// `SET` with options. Reply: `.ok` when set, `.null` when the condition prevented it.
    case set(key: String, value: [UInt8], expiry: Expiry, condition: SetCondition)
    /// `DEL`. Reply: `.integer(keys removed)`.
    case delete(keys: [String])
    /// `PEXPIRE`. Reply: `.integer(1)` if the key exists, else `.integer(0)`.
    case expire(key: String, after: Duration)
    /// `PTTL`. Reply: `.integer(milliseconds)`, `-1` persistent, `-2` missing.
    case timeToLive(key: String)
    /// `INCRBY`: a missing key counts as 0. Reply: `.integer(new value)`; throws
    /// ``BrokerError/Code/notAnInteger`` if the value is not a 64-bit decimal integer.
    case increment(key: String, by: Int64)

    // MARK: Channels

    /// `PUBLISH`. Reply: `.integer(receivers)`; a subscriber matched by a channel and a
    /// pattern counts twice.
    case publish(payload: [UInt8], channel: String)
}
