import Broker

/// Undo information for one atomic batch, in the order the changes were made, and where the
/// batch's queued side effects begin.
struct Journal {
    enum Undo {
        /// Put back `key`'s entry as it was before a change (`nil`: there was none).
        case restore(String, Entry?)
        /// Take back the last `count` values pushed onto `end` of the list at `key`.
        ///
        /// A push records this instead of a copy of the list: a copy would share the list's
        /// storage, so the push itself would then copy every element (job creation would cost
        /// O(queue length)).
        case unpush(String, QueueEnd, count: Int)
    }
    var undo: [Undo] = []
    /// Watched keys the batch wrote; their watches are marked dirty only if it commits.
    var touched: [String] = []
    let readyMark: Int
    let publicationMark: Int
}

extension MemoryStore {
    /// Applies `commands` all or none (Redis `MULTI`/`EXEC`, but with rollback: Redis would
    /// apply the commands before a failing one; the ``Broker`` contract wants none applied).
    ///
    /// Each command validates its key types and arguments before it changes anything, so the
    /// first failing command leaves the state of its own keys untouched; the journal restores
    /// whatever the commands before it changed.
    mutating func applyAtomically(_ commands: [BrokerCommand]) throws(BrokerError) -> [Reply] {
        // The last batch's undo storage, emptied: a batch allocates no journal of its own.
        var undo = spareUndo
        spareUndo = []
        undo.reserveCapacity(commands.count)  // usually one undo per command
        journal = Journal(undo: undo, readyMark: readyQueues.count, publicationMark: effects.publications.count)
        var replies: [Reply] = []
        replies.reserveCapacity(commands.count)
        for command in commands {
            do {
                replies.append(try apply(command))
            } catch {
                rollBack()
                throw error
            }
        }
        var finished = journal.take()!
        finished.undo.removeAll(keepingCapacity: true)
        spareUndo = finished.undo
        for key in finished.touched { touch(key) }
        return replies
    }

    /// Records `key`'s entry before the batch changes it.
    mutating func journalSnapshot(_ key: String) {
        journalSnapshot(key, entries[key])
    }

    /// Records that `key`'s entry was `entry` (looked up by the caller) before the change.
    mutating func journalSnapshot(_ key: String, _ entry: Entry?) {
        // A value copy: a list's storage is shared until the live list changes, then copied.
        journal!.undo.append(.restore(key, entry))
    }

    /// Records how to take back a push of `count` values onto `end` of `key`: just that, when
    /// the key holds a live list (an emptied one included); the whole entry otherwise.
    mutating func journalPush(_ key: String, end: QueueEnd, count: Int) {
        if let index = physicalIndex(key), entries.values[index].isList,
            entries.values[index].deadline.map({ $0 > now() }) ?? true
        {
            journal!.undo.append(.unpush(key, end, count: count))
        } else {
            journalSnapshot(key)
        }
    }

    private mutating func rollBack() {
        let journal = journal!
        self.journal = nil
        cachedIndex = nil
        for undo in journal.undo.reversed() {
            guard case .restore(let key, let saved) = undo else {
                if case .unpush(let key, let end, let count) = undo, let index = entries.index(forKey: key),
                    entries.values[index].isList
                {
                    entries.values[index].withList { items in
                        switch end {
                        case .head: items.removeFirst(count)
                        case .tail: items.removeLast(count)
                        }
                    }
                }
                continue
            }
            if let saved {
                entries[key] = saved
                // Its place in the list of emptied lists may have been used up meanwhile.
                if saved.awaitingRemoval { emptiedLists.append(key) }
            } else {
                entries[key] = nil
            }
        }
        readyQueues.removeSubrange(journal.readyMark...)
        effects.publications.removeSubrange(journal.publicationMark...)
    }
}
