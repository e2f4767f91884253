public import Broker
import DequeModule

extension Entry {
    var listCount: Int {
        if case .list(let items) = value { return items.count }
        return 0
    }

    /// The result of ``withLiveList(now:includingEmpty:_:)``.
    enum ListAccess<Result> {
        case expired, absent, wrongType
        /// The entry has a deadline: call again with the current time.
        case needsTime
        case done(Result)
    }

    /// The hot path of list commands in one in-place access to the table: checks the deadline
    /// (asking for the time only if there is one) and the type, then runs `body` on the
    /// elements (uniquely referenced: no copy on write).
    mutating func withLiveList<Result>(
        now: Duration?, includingEmpty: Bool, _ body: (inout Deque<[UInt8]>) -> Result
    ) -> ListAccess<Result> {
        if let deadline {
            guard let now else { return .needsTime }
            if deadline <= now { return .expired }
        }
        guard case .list(var items) = value else { return .wrongType }
        if items.isEmpty && !includingEmpty { return .absent }
        value = .string([])
        defer { value = .list(items) }
        return .done(body(&items))
    }

    /// Where `value` first occurs in the list, searching from the head or from the tail.
    func position(of value: [UInt8], fromHead: Bool) -> Int? {
        guard case .list(let items) = self.value else { return nil }
        // The acknowledgement's search through the processing list: job ids of one length
        // differ in their last bytes, so those are compared before the whole value.
        let last = value.last
        func matches(_ item: [UInt8]) -> Bool { item.count == value.count && item.last == last && item == value }
        return fromHead ? items.firstIndex(where: matches) : items.lastIndex(where: matches)
    }

    /// Marks an emptied list as no longer existing: it loses its deadline and is queued for
    /// removal once. Returns whether it was newly queued.
    mutating func markEmptied() -> Bool {
        deadline = nil
        let newlyQueued = !awaitingRemoval
        awaitingRemoval = true
        return newlyQueued
    }
}

extension MemoryStore {
    /// Where the list at `key` is, `nil` if the key does not exist, or throws if it holds a
    /// string. The index is valid until the next insertion or removal.
    mutating func listIndex(_ key: String) throws(BrokerError) -> Index? {
        guard let index = liveIndex(key) else { return nil }
        guard entries.values[index].isList else { throw .wrongType }
        return index
    }

    /// Wakes waiters on `key` after this command, if there are any.
    @inline(__always)
    mutating func markReady(_ key: String) {
        if !queueWaiters.isEmpty, queueWaiters[key] != nil { readyQueues.append(key) }
    }

    /// Removes the list at `index` if it has become empty (Redis has no empty lists), else
    /// signals it as modified.
    private mutating func settleList(at index: Index, key: String, isEmpty: Bool) {
        if isEmpty { listBecameEmpty(at: index, key: key) } else { touch(key) }
    }

    /// Where to push onto `key`: its list, an emptied list left in place, or `nil` for a
    /// missing key. Throws if the key holds a string.
    private mutating func pushIndex(_ key: String) throws(BrokerError) -> Index? {
        if let index = try listIndex(key) { return index }
        guard let index = physicalIndex(key), entries.values[index].isEmptyList else { return nil }
        return index
    }

    mutating func push(_ values: [[UInt8]], end: QueueEnd, queue key: String) throws(BrokerError) -> Reply {
        guard !values.isEmpty else { throw BrokerError(.invalidArgument, "a push needs at least one value") }
        let count: Int
        if journal != nil { journalPush(key, end: end, count: values.count) }
        if let index = try pushIndex(key) {
            count = entries.values[index].withList { items in Self.add(values, to: &items, at: end) }
        } else {
            var items = newList()
            count = Self.add(values, to: &items, at: end)
            insert(Entry(value: .list(items), deadline: nil), at: key)
        }
        touch(key)
        markReady(key)
        return .integer(Int64(count))
    }

    /// `push(_:end:queue:)` for one value, without the array around it.
    @usableFromInline
    mutating func push(one value: [UInt8], end: QueueEnd, queue key: String) throws(BrokerError) -> Int {
        if journal != nil { journalPush(key, end: end, count: 1) }
        if let index = physicalIndex(key) {
            func add(_ items: inout Deque<[UInt8]>) -> Int {
                switch end {
                case .head: items.prepend(value)
                case .tail: items.append(value)
                }
                return items.count
            }
            var access = entries.values[index].withLiveList(now: nil, includingEmpty: true, add)
            if case .needsTime = access {
                access = entries.values[index].withLiveList(now: now(), includingEmpty: true, add)
            }
            switch access {
            case .done(let count):
                touch(key)
                markReady(key)
                return count
            case .wrongType:
                throw .wrongType
            case .expired:
                removeEntry(at: index, key: key)
            case .absent, .needsTime:
                preconditionFailure("an emptied list takes pushes; the time was given")
            }
        }
        var items = newList()
        items.append(value)
        insert(Entry(value: .list(items), deadline: nil), at: key)
        touch(key)
        markReady(key)
        return 1
    }

    private static func add(_ values: [[UInt8]], to items: inout Deque<[UInt8]>, at end: QueueEnd) -> Int {
        switch end {
        case .head: for value in values { items.prepend(value) }
        case .tail: items.append(contentsOf: values)
        }
        return items.count
    }

    @usableFromInline
    mutating func pop(end: QueueEnd, queue key: String) throws(BrokerError) -> [UInt8]? {
        guard let index = physicalIndex(key) else { return nil }
        willModify(key)
        func take(_ items: inout Deque<[UInt8]>) -> ([UInt8], Bool) {
            (end == .head ? items.removeFirst() : items.removeLast(), items.isEmpty)
        }
        var access = entries.values[index].withLiveList(now: nil, includingEmpty: false, take)
        if case .needsTime = access {
            access = entries.values[index].withLiveList(now: now(), includingEmpty: false, take)
        }
        switch access {
        case .done(let (value, isEmpty)):
            settleList(at: index, key: key, isEmpty: isEmpty)
            return value
        case .absent, .needsTime:
            return nil
        case .expired:
            removeEntry(at: index, key: key)
            return nil
        case .wrongType:
            throw .wrongType
        }
    }

    /// `LMOVE`: checks both types before changing anything; `nil` when `source` is empty.
    mutating func move(
        _ source: String, _ sourceEnd: QueueEnd, _ destination: String, _ destinationEnd: QueueEnd
    ) throws(BrokerError) -> [UInt8]? {
        guard journal == nil, source != destination else {
            return try moveStepByStep(source, sourceEnd, destination, destinationEnd)
        }
        // The agent's take: one lookup of each key (a pop then a push would look each up twice).
        guard var sourceIndex = try listIndex(source) else { return nil }
        let countBefore = entries.count
        let destinationIndex = try pushIndex(destination)
        // An expired destination removed just now may have moved the source's entry.
        if entries.count != countBefore { sourceIndex = physicalIndex(source)! }
        // Both keys are lists (or the destination is missing): nothing below can fail.
        let (value, sourceIsEmpty) = entries.values[sourceIndex].withList { items in
            (sourceEnd == .head ? items.removeFirst() : items.removeLast(), items.isEmpty)
        }
        // The destination first: settling the source may remove emptied lists, moving entries.
        if let destinationIndex {
            entries.values[destinationIndex].withList { items in
                switch destinationEnd {
                case .head: items.prepend(value)
                case .tail: items.append(value)
                }
            }
        } else {
            var items = newList()
            items.append(value)
            insert(Entry(value: .list(items), deadline: nil), at: destination)
            sourceIndex = physicalIndex(source)!
        }
        touch(destination)
        markReady(destination)
        settleList(at: sourceIndex, key: source, isEmpty: sourceIsEmpty)
        return value
    }

    /// `LMOVE` as a pop and a push: inside an atomic batch (each step journals its key) and
    /// for a list rotated onto itself.
    private mutating func moveStepByStep(
        _ source: String, _ sourceEnd: QueueEnd, _ destination: String, _ destinationEnd: QueueEnd
    ) throws(BrokerError) -> [UInt8]? {
        guard try listIndex(source) != nil else { return nil }
        _ = try listIndex(destination)
        // Both keys are lists (or the destination is missing): neither step below can fail.
        guard let value = try pop(end: sourceEnd, queue: source) else { return nil }
        _ = try push(one: value, end: destinationEnd, queue: destination)
        return value
    }

    mutating func remove(_ value: [UInt8], count: Int, queue key: String) throws(BrokerError) -> Reply {
        guard let index = try listIndex(key) else { return .integer(0) }
        let limit = count == 0 || count == .min ? Int.max : abs(count)
        if limit == 1 {
            // The acknowledgement's `LREM processing 1 id`: remove the one element in place
            // instead of rebuilding the list.
            guard let position = entries.values[index].position(of: value, fromHead: count > 0) else {
                return .integer(0)
            }
            willModify(key)
            let isEmpty = entries.values[index].withList { items in
                items.remove(at: position)
                return items.isEmpty
            }
            settleList(at: index, key: key, isEmpty: isEmpty)
            return .integer(1)
        }
        guard case .list(let items) = entries.values[index].value else { return .integer(0) }
        var kept = Deque<[UInt8]>()
        kept.reserveCapacity(items.count)
        var removed = 0
        if count >= 0 {
            for item in items {
                if removed < limit && item == value { removed += 1 } else { kept.append(item) }
            }
        } else {
            for item in items.reversed() {
                if removed < limit && item == value { removed += 1 } else { kept.prepend(item) }
            }
        }
        guard removed > 0 else { return .integer(0) }
        willModify(key)
        entries.values[index].value = .list(kept)
        settleList(at: index, key: key, isEmpty: kept.isEmpty)
        return .integer(Int64(removed))
    }

    mutating func range(_ key: String, start: Int, stop: Int) throws(BrokerError) -> Reply {
        guard let index = try listIndex(key), case .list(let items) = entries.values[index].value,
            let bounds = Self.redisRange(start: start, stop: stop, count: items.count)
        else { return .array([]) }
        return .array(items[bounds].map { .value($0) })
    }

    mutating func trim(_ key: String, start: Int, stop: Int) throws(BrokerError) -> Reply {
        guard let index = try listIndex(key) else { return .ok }
        willModify(key)
        let isEmpty = entries.values[index].withList { items in
            if let bounds = Self.redisRange(start: start, stop: stop, count: items.count) {
                items.removeSubrange(bounds.upperBound...)
                items.removeSubrange(..<bounds.lowerBound)
            } else {
                items.removeAll()
            }
            return items.isEmpty
        }
        // Redis signals the key as modified even when nothing was trimmed.
        settleList(at: index, key: key, isEmpty: isEmpty)
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
