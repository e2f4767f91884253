import Broker

/// Undo information for one atomic batch: each key's entry as it was before the batch first
/// changed it, and where the batch's queued side effects begin.
struct Journal {
    var saved: [String: Entry?] = [:]
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
        journal = Journal(readyMark: readyQueues.count, publicationMark: effects.publications.count)
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
        let touched = journal!.touched
        journal = nil
        for key in touched { touch(key) }
        return replies
    }

    /// Records `key`'s entry before the batch first changes it.
    mutating func journalSnapshot(_ key: String) {
        guard journal!.saved.index(forKey: key) == nil else { return }
        // A value copy: a list's storage is shared until the live list changes, then copied.
        journal!.saved[key] = .some(entries[key])
    }

    private mutating func rollBack() {
        let journal = journal!
        self.journal = nil
        cachedIndex = nil
        for (key, saved) in journal.saved {
            if let saved {
                entries[key] = saved
                // Its place in the list of emptied lists may have been used up meanwhile.
                if saved.awaitingRemoval { emptiedLists.append(key) }
                if saved.deadline != nil { expiring.insert(key) } else { expiring.remove(key) }
            } else {
                entries[key] = nil
                expiring.remove(key)
            }
        }
        readyQueues.removeSubrange(journal.readyMark...)
        effects.publications.removeSubrange(journal.publicationMark...)
    }
}
