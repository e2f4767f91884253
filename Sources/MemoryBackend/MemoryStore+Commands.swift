import Broker

extension MemoryStore {
    /// Runs one command as Redis would, or throws without changing anything.
    ///
    /// Waiters on queues this command filled are not served here: the caller serves them
    /// (``serveReadyQueues()``) once the command, or the whole atomic batch, is done, as Redis
    /// does after each command or `EXEC`.
    mutating func apply(_ command: BrokerCommand) throws(BrokerError) -> Reply {
        switch command {
        case .push(let values, let end, let queue):
            return try push(values, end: end, queue: queue)
        case .pop(let end, let queue):
            return try pop(end: end, queue: queue).map { .value($0) } ?? .null
        case .move(let source, let sourceEnd, let destination, let destinationEnd):
            return try move(source, sourceEnd, destination, destinationEnd).map { .value($0) } ?? .null
        case .remove(let value, let count, let queue):
            return try remove(value, count: count, queue: queue)
        case .length(let queue):
            guard let index = try listIndex(queue) else { return .integer(0) }
            return .integer(Int64(entries.values[index].listCount))
        case .range(let queue, let start, let stop):
            return try range(queue, start: start, stop: stop)
        case .trim(let queue, let start, let stop):
            return try trim(queue, start: start, stop: stop)
        case .get(let key):
            guard let entry = live(key) else { return .null }
            guard case .string(let bytes) = entry.value else { throw .wrongType }
            return .value(bytes)
        case .set(let key, let value, let expiry, let condition):
            return try set(key, value, expiry: expiry, condition: condition)
        case .delete(let keys):
            guard !keys.isEmpty else { throw BrokerError(.invalidArgument, "DEL needs at least one key") }
            var removed: Int64 = 0
            for key in keys {
                if let index = liveIndex(key) {
                    removeEntry(at: index, key: key)
                    removed += 1
                }
            }
            return .integer(removed)
        case .expire(let key, let duration):
            return expire(key, after: duration)
        case .timeToLive(let key):
            guard let entry = live(key) else { return .integer(-2) }
            guard let deadline = entry.deadline else { return .integer(-1) }
            return .integer((deadline - now()).millisecondsRoundedUp)
        case .increment(let key, let amount):
            return try increment(key, by: amount)
        case .publish(let payload, let channel):
            let publication = publication(of: payload, on: channel)
            let receivers = publication.receivers
            if receivers > 0 { effects.publications.append(publication) }
            return .integer(Int64(receivers))
        }
    }

    // MARK: Keys

    mutating func set(
        _ key: String, _ value: [UInt8], expiry: Expiry, condition: SetCondition
    ) throws(BrokerError) -> Reply {
        var ttl: Duration?
        if case .after(let duration) = expiry {
            let milliseconds = duration.wholeMilliseconds
            guard milliseconds > 0 else {
                throw BrokerError(.invalidArgument, "ERR invalid expire time in 'set' command")
            }
            ttl = .milliseconds(milliseconds)
        }
        if case .always = condition {
            switch expiry {
            case .never: return setUnconditionally(key, value, deadline: nil)
            case .after: return setUnconditionally(key, value, deadline: now() + ttl!)
            case .keepExisting: break
            }
        }
        // One lookup of the key for the whole command (`live` without a second search).
        var index = physicalIndex(key)
        var existingDeadline: Duration?
        var existingListing: Int64?
        var exists = false
        if let found = index {
            let deadline = entries.values[found].deadline
            if let deadline, deadline <= now() {
                removeEntry(at: found, key: key)
                index = nil
            } else if !entries.values[found].isEmptyList {
                exists = true
                existingDeadline = deadline
                existingListing = entries.values[found].listedSecond
            }
        }
        switch condition {
        case .always: break
        case .ifAbsent: if exists { return .null }
        case .ifPresent: if !exists { return .null }
        }
        var entry = Entry(value: .string(value), deadline: nil)
        switch expiry {
        case .never: break
        case .after:
            entry.deadline = now() + ttl!
            entry.listedSecond = listing(key, deadline: entry.deadline!, listed: existingListing)
        case .keepExisting:
            entry.deadline = existingDeadline
            entry.listedSecond = existingListing
        }
        store(entry, at: key, index: index)
        return .ok
    }

    /// A `SET` that replaces whatever `key` held, live or expired, without looking at it
    /// first: one hash of the key for a new key too (a job's record and lease always are).
    private mutating func setUnconditionally(_ key: String, _ value: [UInt8], deadline: Duration?) -> Reply {
        let second = deadline.map(ExpiryIndex.second(containing:))
        let previous = entries.updateValue(
            Entry(value: .string(value), deadline: deadline, listedSecond: second), forKey: key)
        if let deadline {
            // A key listed no later keeps that listing (a second hash, for existing keys only).
            let listed = listing(key, deadline: deadline, listed: previous?.listedSecond)
            if listed != second { entries[key]!.listedSecond = listed }
        }
        if let previous {
            // An emptied list awaiting removal stays listed; the removal sees a string and
            // leaves it.
            if case .list(let items) = previous.value, items.isEmpty { spareList = items }
        } else {
            cachedIndex = nil  // an insertion may have moved every entry
        }
        if journal != nil { journalSnapshot(key, previous) }
        touch(key)
        return .ok
    }

    mutating func expire(_ key: String, after duration: Duration) -> Reply {
        guard let index = liveIndex(key) else { return .integer(0) }
        let milliseconds = duration.wholeMilliseconds
        // Redis deletes a key given a TTL that is already over.
        guard milliseconds > 0 else {
            removeEntry(at: index, key: key)
            return .integer(1)
        }
        var entry = entries.values[index]
        entry.deadline = now() + .milliseconds(milliseconds)
        entry.listedSecond = listing(key, deadline: entry.deadline!, listed: entry.listedSecond)
        store(entry, at: key)
        return .integer(1)
    }

    mutating func increment(_ key: String, by amount: Int64) throws(BrokerError) -> Reply {
        let existing = live(key)
        var current: Int64 = 0
        if let existing {
            guard case .string(let bytes) = existing.value else { throw .wrongType }
            guard let value = Int64(redisDecimal: bytes) else {
                throw BrokerError(.notAnInteger, "ERR value is not an integer or out of range")
            }
            current = value
        }
        let (sum, overflow) = current.addingReportingOverflow(amount)
        guard !overflow else { throw BrokerError(.notAnInteger, "ERR increment or decrement would overflow") }
        // INCRBY keeps the key's TTL.
        let entry = Entry(
            value: .string(Array(String(sum).utf8)), deadline: existing?.deadline, listedSecond: existing?.listedSecond)
        store(entry, at: key)
        return .integer(sum)
    }
}

extension Int64 {
    /// Parses bytes exactly as Redis's `string2ll` does: an optional `-`, no `+`, no leading
    /// zeros (except `0` itself), no spaces, no `-0`, within 64 bits.
    init?(redisDecimal bytes: [UInt8]) {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        if bytes == [UInt8(ascii: "0")] {
            self = 0
            return
        }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < bytes.count, bytes[index] >= UInt8(ascii: "1"), bytes[index] <= UInt8(ascii: "9") else {
            return nil
        }
        // Accumulate as a negative number so that Int64.min parses too.
        var value: Int64 = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.subtractingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = next
            index += 1
        }
        if negative {
            self = value
        } else {
            guard value != .min else { return nil }
            self = -value
        }
    }
}
