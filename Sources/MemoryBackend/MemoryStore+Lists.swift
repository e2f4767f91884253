import Broker
import DequeModule

extension MemoryStore {
    /// The list at `key` and its deadline, `nil` if the key does not exist, or throws if it
    /// holds a string.
    mutating func listEntry(_ key: String) throws(BrokerError) -> (list: MemoryList, deadline: Duration?)? {
        guard let entry = live(key) else { return nil }
        guard case .list(let list) = entry.value else { throw .wrongType }
        return (list, entry.deadline)
    }

    /// Removes the key of a list that has become empty: Redis has no empty lists.
    mutating func dropIfEmpty(_ key: String, _ list: MemoryList, deadline: Duration?) {
        if list.items.isEmpty { removeEntry(key, deadline: deadline) }
    }

    /// Wakes waiters on `key` after this command, if there are any.
    mutating func markReady(_ key: String) {
        if !queueWaiters.isEmpty, queueWaiters[key] != nil { readyQueues.append(key) }
    }

    mutating func push(_ values: [[UInt8]], end: QueueEnd, queue key: String) throws(BrokerError) -> Reply {
        guard !values.isEmpty else { throw BrokerError(.invalidArgument, "a push needs at least one value") }
        let list: MemoryList
        if let existing = try listEntry(key) {
            willModify(key)
            list = existing.list
        } else {
            willModify(key)
            list = newList()
            entries[key] = Entry(value: .list(list), deadline: nil)
        }
        switch end {
        case .head: for value in values { list.items.prepend(value) }
        case .tail: list.items.append(contentsOf: values)
        }
        touch(key)
        markReady(key)
        return .integer(Int64(list.items.count))
    }

    mutating func pop(end: QueueEnd, queue key: String) throws(BrokerError) -> [UInt8]? {
        guard let (list, deadline) = try listEntry(key) else { return nil }
        willModify(key)
        let value = end == .head ? list.items.removeFirst() : list.items.removeLast()
        touch(key)
        dropIfEmpty(key, list, deadline: deadline)
        return value
    }

    /// `LMOVE`: checks both types before changing anything; `nil` when `source` is empty.
    mutating func move(
        _ source: String, _ sourceEnd: QueueEnd, _ destination: String, _ destinationEnd: QueueEnd
    ) throws(BrokerError) -> [UInt8]? {
        guard let (sourceList, sourceDeadline) = try listEntry(source) else { return nil }
        let target = try listEntry(destination)
        willModify(source)
        willModify(destination)
        let value = sourceEnd == .head ? sourceList.items.removeFirst() : sourceList.items.removeLast()
        let destinationList: MemoryList
        if let target {
            destinationList = target.list
        } else {
            destinationList = newList()
            entries[destination] = Entry(value: .list(destinationList), deadline: nil)
        }
        switch destinationEnd {
        case .head: destinationList.items.prepend(value)
        case .tail: destinationList.items.append(value)
        }
        touch(source)
        touch(destination)
        dropIfEmpty(source, sourceList, deadline: sourceDeadline)
        markReady(destination)
        return value
    }

    mutating func remove(_ value: [UInt8], count: Int, queue key: String) throws(BrokerError) -> Reply {
        guard let (list, deadline) = try listEntry(key) else { return .integer(0) }
        let limit = count == 0 ? Int.max : count.magnitude > UInt(Int.max) ? Int.max : abs(count)
        var kept = Deque<[UInt8]>()
        kept.reserveCapacity(list.items.count)
        var removed = 0
        if count >= 0 {
            for item in list.items {
                if removed < limit && item == value { removed += 1 } else { kept.append(item) }
            }
        } else {
            for item in list.items.reversed() {
                if removed < limit && item == value { removed += 1 } else { kept.prepend(item) }
            }
        }
        guard removed > 0 else { return .integer(0) }
        willModify(key)
        list.items = kept
        touch(key)
        dropIfEmpty(key, list, deadline: deadline)
        return .integer(Int64(removed))
    }

    mutating func range(_ key: String, start: Int, stop: Int) throws(BrokerError) -> Reply {
        guard let (list, _) = try listEntry(key) else { return .array([]) }
        guard let bounds = Self.redisRange(start: start, stop: stop, count: list.items.count) else {
            return .array([])
        }
        return .array(list.items[bounds].map { .value($0) })
    }

    mutating func trim(_ key: String, start: Int, stop: Int) throws(BrokerError) -> Reply {
        guard let (list, deadline) = try listEntry(key) else { return .ok }
        willModify(key)
        if let bounds = Self.redisRange(start: start, stop: stop, count: list.items.count) {
            list.items.removeSubrange(bounds.upperBound...)
            list.items.removeSubrange(..<bounds.lowerBound)
        } else {
            list.items.removeAll()
        }
        // Redis signals the key as modified even when nothing was trimmed.
        touch(key)
        dropIfEmpty(key, list, deadline: deadline)
        return .ok
    }

    /// The index range `LRANGE`/`LTRIM` select: negative indices count from the tail, a start
    /// before the head is clamped to it, a stop past the tail to it; `nil` when empty.
    static func redisRange(start: Int, stop: Int, count: Int) -> Range<Int>? {
        var start = start < 0 ? start &+ count : start
        var stop = stop < 0 ? stop &+ count : stop
        if start < 0 { start = 0 }
        guard start <= stop, start < count else { return nil }
        if stop >= count { stop = count - 1 }
        return start..<(stop + 1)
    }
}
