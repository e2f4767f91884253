import Broker
import DequeModule

/// What a key holds: one kind of value, as in Redis.
enum StoredValue {
    case string([UInt8])
    case list(Deque<[UInt8]>)
}

/// A key's value and its expiry, as an offset on the broker's clock (whole milliseconds).
struct Entry {
    var value: StoredValue
    var deadline: Duration?
    /// An emptied list listed in `emptiedLists` (see ``MemoryStore/listBecameEmpty(at:key:)``).
    var awaitingRemoval = false
    /// ``listedSecond`` in 32 bits (-1: none), which keeps an entry at 32 bytes.
    private var listed: Int32 = -1

    init(value: StoredValue, deadline: Duration?, listedSecond: Int64? = nil) {
        self.value = value
        self.deadline = deadline
        self.listedSecond = listedSecond
    }

    /// The second under which ``MemoryStore/expiring`` lists this key for the sweep: the one
    /// listing that counts (others are stale and skipped). At most the deadline's own second.
    /// A deadline over 68 years away is not kept here: such a key expires when read.
    var listedSecond: Int64? {
        get { listed < 0 ? nil : Int64(listed) }
        set { listed = newValue.flatMap { Int32(exactly: $0) } ?? -1 }
    }

    var isEmptyList: Bool {
        if case .list(let items) = value { return items.isEmpty }
        return false
    }

    var isList: Bool {
        if case .list = value { return true }
        return false
    }

    /// Runs `body` on the list in place. The enum's own reference is dropped for the call,
    /// so the elements are uniquely referenced and mutating them copies nothing.
    mutating func withList<Result>(_ body: (inout Deque<[UInt8]>) -> Result) -> Result {
        guard case .list(var items) = value else { preconditionFailure("withList on a string") }
        value = .string([])
        defer { value = .list(items) }
        return body(&items)
    }
}

/// The whole state of a `MemoryBroker`, only ever touched under its lock.
///
/// Commands mutate it synchronously; whatever must happen outside the lock (resuming a
/// waiter's continuation, delivering a published message) is queued in ``effects`` and run by
/// the broker after the lock is released.
@usableFromInline
struct MemoryStore: ~Copyable {
    let now: @Sendable () -> Duration

    /// Every key.
    var entries: [String: Entry] = [:]
    /// The keys with a deadline, by second, for the sweep (see ``listing(_:deadline:listed:)``).
    var expiring = ExpiryIndex()
    /// The storage of the last list that was emptied, kept for reuse so that a queue that
    /// goes empty and full again (the usual job queue) does not allocate each time.
    var spareList: Deque<[UInt8]>?
    /// Lists that became empty and await removal (see ``listBecameEmpty(at:key:)``).
    var emptiedLists: [String] = []
    /// The last key looked up and where it was (see ``physicalIndex(_:)``).
    var cachedKey = ""
    var cachedIndex: Index?

    // Blocking waiters (see MemoryStore+Waiters.swift).
    var waiters: [UInt64: Waiter] = [:]
    var queueWaiters: [String: Deque<UInt64>] = [:]
    /// Queues that received values while someone waits on them; served after each command.
    var readyQueues: [String] = []
    var nextID: UInt64 = 0

    // Subscriptions (see MemoryStore+Channels.swift).
    var channelSubscribers: [String: [Subscription]] = [:]
    var patternSubscribers: [String: PatternSubscribers] = [:]

    // Optimistic transactions (see MemoryStore+Watches.swift).
    var watches: [UInt64: Watch] = [:]
    var watchedKeys: [String: [UInt64]] = [:]

    /// Undo information while an atomic batch runs (see MemoryStore+Atomic.swift).
    var journal: Journal?
    /// The storage of the last journal's undo list, kept for the next batch.
    var spareUndo: [Journal.Undo] = []

    /// Work for the broker to do once the lock is released.
    var effects = Effects()

    init(now: @escaping @Sendable () -> Duration) {
        self.now = now
    }

    mutating func makeID() -> UInt64 {
        nextID &+= 1
        return nextID
    }

    // MARK: Lookup with lazy expiry

    typealias Index = Dictionary<String, Entry>.Index

    /// Where `key`'s entry physically is (an emptied list included). The last lookup is
    /// remembered: a worker hammering one queue does not hash its name on every command.
    @inline(__always)
    mutating func physicalIndex(_ key: String) -> Index? {
        if let cachedIndex, cachedKey == key { return cachedIndex }
        guard let index = entries.index(forKey: key) else { return nil }
        cachedKey = key
        cachedIndex = index
        return index
    }

    /// Where the entry at `key` is, if it exists and has not expired; an expired one is
    /// removed here, an emptied list counts as missing. The index is valid until the next
    /// insertion or removal.
    mutating func liveIndex(_ key: String) -> Index? {
        guard let index = physicalIndex(key) else { return nil }
        if let deadline = entries.values[index].deadline, deadline <= now() {
            removeEntry(at: index, key: key)
            return nil
        }
        if entries.values[index].isEmptyList { return nil }
        return index
    }

    /// The entry at `key` if it exists and has not expired.
    mutating func live(_ key: String) -> Entry? {
        liveIndex(key).map { entries.values[$0] }
    }

    /// How many keys exist (expired ones not yet removed included).
    var keyCount: Int {
        entries.values.reduce(0) { $0 + ($1.isEmptyList ? 0 : 1) }
    }

    // MARK: Mutation (every write goes through these, for watches, journal and the sweep)

    /// Called before any change to `key`: records undo information inside an atomic batch.
    @inline(__always)
    mutating func willModify(_ key: String) {
        if journal != nil { journalSnapshot(key) }
    }

    /// Marks watches on `key` dirty (Redis `signalModifiedKey`).
    @inline(__always)
    mutating func touch(_ key: String) {
        guard !watchedKeys.isEmpty, let ids = watchedKeys[key] else { return }
        if journal != nil {
            journal!.touched.append(key)
            return
        }
        for id in ids { watches[id]?.dirty = true }
    }

    mutating func removeEntry(at index: Index, key: String) {
        willModify(key)
        cachedIndex = nil
        let removed = entries.remove(at: index).value
        if case .list(let items) = removed.value, items.isEmpty { spareList = items }
        touch(key)
    }

    /// Stores `entry` at `key`.
    mutating func store(_ entry: Entry, at key: String) {
        willModify(key)
        insert(entry, at: key)
        touch(key)
    }

    /// Stores `entry` at `key`, whose physical place in the table (if any) the caller has
    /// just looked up: a write costs one lookup of the key, or two for a new key.
    mutating func store(_ entry: Entry, at key: String, index: Index?) {
        if journal != nil { journalSnapshot(key, index.map { entries.values[$0] }) }
        if let index {
            entries.values[index] = entry
        } else {
            cachedIndex = nil
            entries[key] = entry
        }
        touch(key)
    }

    /// Inserts or replaces the entry at `key` (invalidating remembered indices).
    mutating func insert(_ entry: Entry, at key: String) {
        if let index = physicalIndex(key) {
            entries.values[index] = entry
        } else {
            cachedIndex = nil
            entries[key] = entry
        }
    }

    /// A list that has become empty no longer exists (Redis has no empty lists). It stays in
    /// the table, logically absent, until the next sweep, so that a queue going empty and full
    /// again (the usual job queue) costs no removal and re-insertion each time.
    mutating func listBecameEmpty(at index: Index, key: String) {
        if entries.values[index].markEmptied() {
            emptiedLists.append(key)
            // Without a running sweep, still keep the leftovers bounded.
            if emptiedLists.count > 1024 { removeEmptiedLists() }
        }
        touch(key)
    }

    /// Removes the lists that became empty since the last call.
    mutating func removeEmptiedLists() {
        let keys = emptiedLists
        emptiedLists.removeAll(keepingCapacity: true)
        for key in keys {
            guard let index = physicalIndex(key) else { continue }
            if entries.values[index].isEmptyList {
                cachedIndex = nil
                if case .list(let items) = entries.remove(at: index).value.value { spareList = items }
            } else {
                entries.values[index].awaitingRemoval = false
            }
        }
    }

    /// An empty list, reusing the storage of the last one emptied.
    mutating func newList() -> Deque<[UInt8]> {
        guard let spare = spareList else { return Deque() }
        spareList = nil
        return spare
    }

    // MARK: Expiry sweep

    /// The second to list `key` under as its deadline becomes `deadline`, given the second it
    /// is listed under now (`listed`, from its entry), adding a listing only when the present
    /// one would come due too late. A deadline pushed back (a log's TTL renewed on every append)
    /// adds nothing: the sweep finds the key alive at its old second and lists it again under
    /// the new one. So each key has one listing that counts, however often its TTL changes.
    mutating func listing(_ key: String, deadline: Duration, listed: Int64?) -> Int64 {
        let second = ExpiryIndex.second(containing: deadline)
        if let listed, listed <= second { return listed }
        expiring.add(key, second: second)
        return second
    }

    /// Removes emptied lists and expired keys, visiting at most `limit` keys listed in
    /// ``expiring`` under seconds that have passed (a deadline is found at the first sweep
    /// after its second is over). The caller holds the lock for one call: the limit bounds
    /// how long others wait.
    /// - Returns: how many keys expired, and whether due keys are left for another call.
    mutating func sweepExpired(limit: Int) -> (expired: Int, more: Bool) {
        if !emptiedLists.isEmpty { removeEmptiedLists() }
        let now = now()
        var visited = 0
        var expired = 0
        while let (second, keys) = expiring.takeDue(at: now, limit: limit - visited) {
            visited += keys.count
            for key in keys {
                // A stale listing (the key deleted, or listed under another second since) is
                // dropped.
                guard let index = physicalIndex(key), entries.values[index].listedSecond == second else { continue }
                guard let deadline = entries.values[index].deadline else {
                    // Persistent now (or an emptied list): it is listed nowhere any more.
                    entries.values[index].listedSecond = nil
                    continue
                }
                if deadline <= now {
                    removeEntry(at: index, key: key)
                    expired += 1
                } else {
                    // Its deadline was pushed back: list it under the new one's second.
                    entries.values[index].listedSecond = listing(key, deadline: deadline, listed: nil)
                }
            }
        }
        return (expired, expiring.hasDue(at: now))
    }
}

extension BrokerError {
    static let wrongType = BrokerError(.wrongType, "WRONGTYPE Operation against a key holding the wrong kind of value")
}
