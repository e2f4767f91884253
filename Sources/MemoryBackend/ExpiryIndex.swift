import HeapModule

/// The keys with a deadline, grouped by a whole second no later than the deadline's (rounded
/// up), so that the periodic sweep visits the keys that may have expired instead of every key.
///
/// Adding is an append to the current second's list: no hash of the key. Deleting a key
/// changes nothing here. Which listing of a key counts is kept in its entry
/// (``Entry/listedSecond``), and the sweep drops the others as stale; see
/// ``MemoryStore/listing(_:deadline:listed:)``.
struct ExpiryIndex {
    /// Keys by the second their deadline was rounded up to.
    private var buckets: [Int64: [String]] = [:]
    /// The seconds that have a bucket, soonest first.
    private var seconds = Heap<Int64>()
    /// The bucket most recently added to, kept out of `buckets` so that consecutive writes
    /// with the same TTL (nearly all of them) append without a lookup.
    private var current: (second: Int64, keys: [String])?

    /// How many keys are listed (each listing of a key listed more than once).
    var count: Int { buckets.values.reduce(current?.keys.count ?? 0) { $0 + $1.count } }

    /// Lists `key` under `second`.
    mutating func add(_ key: String, second: Int64) {
        if current?.second == second {
            current!.keys.append(key)
            return
        }
        fileCurrent()
        if let keys = buckets.removeValue(forKey: second) {
            current = (second, keys)
        } else {
            seconds.insert(second)
            current = (second, [])
        }
        current!.keys.append(key)
    }

    /// Takes up to `limit` keys listed under a second that has fully passed at `now`, the
    /// soonest first, with that second; `nil` when there are none.
    mutating func takeDue(at now: Duration, limit: Int) -> (second: Int64, keys: [String])? {
        fileCurrent()
        let passed = Self.secondsPassed(at: now)
        while limit > 0, let soonest = seconds.min, soonest <= passed {
            guard var keys = buckets.removeValue(forKey: soonest), !keys.isEmpty else {
                _ = seconds.popMin()
                continue
            }
            guard keys.count > limit else {
                _ = seconds.popMin()
                return (soonest, keys)
            }
            let taken = Array(keys.suffix(limit))
            keys.removeLast(limit)
            buckets[soonest] = keys
            return (soonest, taken)
        }
        return nil
    }

    /// Whether a second that has passed at `now` may still have keys.
    func hasDue(at now: Duration) -> Bool {
        guard let soonest = seconds.min else { return false }
        return soonest <= Self.secondsPassed(at: now)
    }

    /// Puts the current bucket back among the others (every second in `seconds` has its keys
    /// either in `buckets` or in `current`).
    private mutating func fileCurrent() {
        guard let (second, keys) = current else { return }
        current = nil
        buckets[second] = keys
    }

    /// The whole second a deadline is rounded up to: a deadline listed under it has passed
    /// once that second has.
    static func second(containing deadline: Duration) -> Int64 {
        let (seconds, attoseconds) = deadline.components
        return attoseconds > 0 ? seconds + 1 : seconds
    }

    /// The last whole second that has passed at `now`.
    private static func secondsPassed(at now: Duration) -> Int64 {
        let (seconds, attoseconds) = now.components
        return attoseconds < 0 ? seconds - 1 : seconds
    }
}
