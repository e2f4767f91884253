import Broker
import DequeModule

/// A list's elements, held by reference so that pushing and popping mutate the dictionary's
/// value in place (no copy-on-write of the whole `Deque` through the dictionary).
final class MemoryList {
    var items: Deque<[UInt8]>

    init(_ items: Deque<[UInt8]> = []) {
        self.items = items
    }
}

/// What a key holds: one kind of value, as in Redis.
enum StoredValue {
    case string([UInt8])
    case list(MemoryList)
}

/// A key's value and its expiry, as an offset on the broker's clock (whole milliseconds).
struct Entry {
    var value: StoredValue
    var deadline: Duration?
}

/// The whole state of a `MemoryBroker`, only ever touched under its lock.
///
/// Commands mutate it synchronously; whatever must happen outside the lock (resuming a
/// waiter's continuation, delivering a published message) is queued in ``effects`` and run by
/// the broker after the lock is released.
struct MemoryStore: ~Copyable {
    let now: @Sendable () -> Duration

    var entries: [String: Entry] = [:]
    /// Keys that have a deadline, so the sweep visits only those.
    var expiring: Set<String> = []
    /// Emptied list boxes kept for reuse, so a queue that goes empty and full again (the
    /// usual job queue) does not allocate each time.
    var spareLists: [MemoryList] = []

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

    /// The entry at `key` if it exists and has not expired; an expired one is removed here.
    mutating func live(_ key: String) -> Entry? {
        guard let entry = entries[key] else { return nil }
        if let deadline = entry.deadline, deadline <= now() {
            removeEntry(key, deadline: deadline)
            return nil
        }
        return entry
    }

    /// The list at `key`, `nil` if there is none, or throws if the key holds a string.
    mutating func list(_ key: String) throws(BrokerError) -> MemoryList? {
        guard let entry = live(key) else { return nil }
        guard case .list(let list) = entry.value else { throw .wrongType }
        return list
    }

    // MARK: Mutation (every write goes through these, for watches, journal and the sweep)

    /// Called before any change to `key`: records undo information inside an atomic batch.
    mutating func willModify(_ key: String) {
        if journal != nil { journalSnapshot(key) }
    }

    /// Marks watches on `key` dirty (Redis `signalModifiedKey`).
    mutating func touch(_ key: String) {
        guard !watchedKeys.isEmpty, let ids = watchedKeys[key] else { return }
        if journal != nil {
            journal!.touched.append(key)
            return
        }
        for id in ids { watches[id]?.dirty = true }
    }

    mutating func removeEntry(_ key: String, deadline: Duration?) {
        willModify(key)
        if let removed = entries.removeValue(forKey: key), case .list(let list) = removed.value {
            recycle(list)
        }
        if deadline != nil { expiring.remove(key) }
        touch(key)
    }

    /// Stores `entry` at `key`, keeping the set of expiring keys in step.
    mutating func store(_ entry: Entry, at key: String, previousDeadline: Duration?) {
        willModify(key)
        entries[key] = entry
        if entry.deadline != nil {
            if previousDeadline == nil { expiring.insert(key) }
        } else if previousDeadline != nil {
            expiring.remove(key)
        }
        touch(key)
    }

    mutating func newList() -> MemoryList {
        spareLists.popLast() ?? MemoryList()
    }

    mutating func recycle(_ list: MemoryList) {
        // Only a list emptied by pops is worth keeping (a deleted long list would pin its
        // buffer); a few suffice for the usual handful of hot queues.
        guard list.items.isEmpty, spareLists.count < 8 else { return }
        spareLists.append(list)
    }

    // MARK: Expiry sweep

    /// Removes every key whose deadline has passed; returns how many went.
    mutating func sweepExpired() -> Int {
        guard !expiring.isEmpty else { return 0 }
        let now = now()
        var expired: [(String, Duration)] = []
        for key in expiring {
            if let deadline = entries[key]?.deadline, deadline <= now { expired.append((key, deadline)) }
        }
        for (key, deadline) in expired { removeEntry(key, deadline: deadline) }
        return expired.count
    }
}

extension BrokerError {
    static let wrongType = BrokerError(.wrongType, "WRONGTYPE Operation against a key holding the wrong kind of value")
}
