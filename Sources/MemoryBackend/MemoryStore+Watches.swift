/// One optimistic transaction's watch (Redis `WATCH`): dirty once any watched key is written,
/// deleted or expired.
struct Watch {
    let keys: [String]
    var dirty = false
}

extension MemoryStore {
    /// Starts watching `keys`; returns the watch's id.
    mutating func watch(_ keys: [String]) -> UInt64 {
        let keys = Self.unique(keys)
        // A key already past its deadline expired before the watch began: drop it now so
        // that its expiry is not taken for a change made during the transaction.
        for key in keys { _ = live(key) }
        let id = makeID()
        watches[id] = Watch(keys: keys)
        for key in keys { watchedKeys[key, default: []].append(id) }
        return id
    }

    /// Whether a watched key changed since the watch began, including a key whose deadline
    /// has passed but that nobody has looked at yet.
    mutating func isConflicted(_ id: UInt64) -> Bool {
        guard let watch = watches[id] else { return true }
        if watch.dirty { return true }
        let now = now()
        return watch.keys.contains { key in
            guard let deadline = entries[key]?.deadline else { return false }
            return deadline <= now
        }
    }

    mutating func unwatch(_ id: UInt64) {
        guard let watch = watches.removeValue(forKey: id) else { return }
        for key in watch.keys {
            guard var ids = watchedKeys.removeValue(forKey: key) else { continue }
            ids.removeAll { $0 == id }
            if !ids.isEmpty { watchedKeys[key] = ids }
        }
    }
}
