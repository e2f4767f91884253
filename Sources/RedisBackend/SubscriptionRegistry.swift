import Broker
import Synchronization

/// The in-process side of pub/sub: which ``Subscription``s listen to which channels and
/// patterns, multiplexed onto one Redis subscriber connection.
///
/// Every channel (and, separately, every pattern) has one entry, reference-counted by the
/// subscriptions using it: the first one sends `SUBSCRIBE`, the last one to leave sends
/// `UNSUBSCRIBE`. `pendingConfirmations` counts `SUBSCRIBE`s sent and not yet confirmed by
/// Redis; callers of ``RedisBroker/subscribe(to:patterns:buffering:_:)`` wait until every
/// entry they use has none pending, so a message published once `body` runs is delivered.
/// An entry whose last subscriber left while a confirmation was pending stays until that
/// confirmation arrives, so that a quick resubscribe waits for its own confirmation.
///
/// This is a plain state machine: methods return what to send; the broker does the I/O.
struct SubscriptionRegistry: ~Copyable {
    enum Kind: Hashable, Sendable { case channel, pattern }

    struct Name: Hashable, Sendable {
        var kind: Kind
        var name: String
    }

    private struct Entry {
        var subscribers: [ObjectIdentifier: Subscription] = [:]
        var pendingConfirmations = 0
        /// Subscribed again after the connection was lost: its subscribers are told once confirmed.
        var resumingAfterLoss = false
    }

    private struct Waiter {
        var remaining: Set<Name>
        var continuation: CheckedContinuation<Result<Void, BrokerError>, Never>
    }

    private struct LeaveWaiter {
        var remaining: Set<Name>
        var continuation: CheckedContinuation<Void, Never>
    }

    private var entries: [Name: Entry] = [:]
    private var waiters: [Int: Waiter] = [:]
    private var leaveWaiters: [Int: LeaveWaiter] = [:]
    private var nextWaiter = 0

    /// Registers a waiter for Redis to confirm `UNSUBSCRIBE`/`PUNSUBSCRIBE` of `names`.
    mutating func waitForUnsubscription(of names: [Name], _ continuation: CheckedContinuation<Void, Never>) {
        nextWaiter += 1
        leaveWaiters[nextWaiter] = LeaveWaiter(remaining: Set(names), continuation: continuation)
    }

    /// Redis confirmed one unsubscription: it counts for the oldest waiter on that name.
    mutating func unsubscribed(_ name: Name) -> CheckedContinuation<Void, Never>? {
        guard let id = leaveWaiters.filter({ $0.value.remaining.contains(name) }).keys.min(),
            var waiter = leaveWaiters[id]
        else { return nil }
        waiter.remaining.remove(name)
        if waiter.remaining.isEmpty {
            leaveWaiters[id] = nil
            return waiter.continuation
        }
        leaveWaiters[id] = waiter
        return nil
    }

    /// Adds `subscription` to each name; returns the names that need a `SUBSCRIBE` now.
    mutating func add(_ subscription: Subscription, to names: [Name]) -> [Name] {
        var toSubscribe: [Name] = []
        for name in Set(names) {
            var entry = entries[name] ?? Entry()
            if entry.subscribers.isEmpty {
                entry.pendingConfirmations += 1
                toSubscribe.append(name)
            }
            entry.subscribers[ObjectIdentifier(subscription)] = subscription
            entries[name] = entry
        }
        return toSubscribe
    }

    /// Registers a waiter for `names` to be confirmed; `nil` if they already are.
    mutating func waitForConfirmation(
        of names: [Name], _ continuation: CheckedContinuation<Result<Void, BrokerError>, Never>
    ) -> Bool {
        let remaining = Set(names.filter { (entries[$0]?.pendingConfirmations ?? 0) > 0 })
        guard !remaining.isEmpty else { return false }
        nextWaiter += 1
        waiters[nextWaiter] = Waiter(remaining: remaining, continuation: continuation)
        return true
    }

    /// Redis confirmed one `SUBSCRIBE`/`PSUBSCRIBE`; returns the waiters now satisfied and,
    /// after a lost connection, the subscriptions live again (to be told they missed messages).
    mutating func confirmed(_ name: Name) -> (
        ready: [CheckedContinuation<Result<Void, BrokerError>, Never>], resumed: [Subscription]
    ) {
        guard var entry = entries[name] else { return ([], []) }
        entry.pendingConfirmations = max(0, entry.pendingConfirmations - 1)
        if entry.pendingConfirmations == 0 && entry.subscribers.isEmpty {
            entries[name] = nil
            return ([], [])
        }
        var resumed: [Subscription] = []
        if entry.pendingConfirmations == 0 && entry.resumingAfterLoss {
            entry.resumingAfterLoss = false
            resumed = Array(entry.subscribers.values)
        }
        entries[name] = entry
        guard entry.pendingConfirmations == 0 else { return ([], []) }
        var ready: [CheckedContinuation<Result<Void, BrokerError>, Never>] = []
        for (id, var waiter) in waiters where waiter.remaining.contains(name) {
            waiter.remaining.remove(name)
            if waiter.remaining.isEmpty {
                waiters[id] = nil
                ready.append(waiter.continuation)
            } else {
                waiters[id] = waiter
            }
        }
        return (ready, resumed)
    }

    /// Removes `subscription`; returns the names that need an `UNSUBSCRIBE` now.
    mutating func remove(_ subscription: Subscription, from names: [Name]) -> [Name] {
        var toUnsubscribe: [Name] = []
        for name in Set(names) {
            guard var entry = entries[name] else { continue }
            entry.subscribers[ObjectIdentifier(subscription)] = nil
            if entry.subscribers.isEmpty {
                toUnsubscribe.append(name)
                entries[name] = entry.pendingConfirmations == 0 ? nil : entry
            } else {
                entries[name] = entry
            }
        }
        return toUnsubscribe
    }

    /// The subscriptions a message for `name` goes to.
    func subscribers(of name: Name) -> [Subscription] {
        guard let entry = entries[name] else { return [] }
        return Array(entry.subscribers.values)
    }

    /// The subscriber connection was lost: waiters fail; confirmations in flight are void.
    mutating func connectionLost() -> (
        subscribing: [CheckedContinuation<Result<Void, BrokerError>, Never>], leaving: [CheckedContinuation<Void, Never>]
    ) {
        defer {
            waiters = [:]
            leaveWaiters = [:]
        }
        return (waiters.values.map(\.continuation), leaveWaiters.values.map(\.continuation))
    }

    /// A new subscriber connection: every name still in use is subscribed again.
    mutating func resubscribeAll() -> [Name] {
        entries = entries.filter { !$0.value.subscribers.isEmpty }
        for name in entries.keys {
            entries[name]?.pendingConfirmations = 1
            entries[name]?.resumingAfterLoss = true
        }
        return Array(entries.keys)
    }

    /// Every live subscription (to end them at shutdown).
    var allSubscriptions: [Subscription] {
        var unique: [ObjectIdentifier: Subscription] = [:]
        for entry in entries.values { unique.merge(entry.subscribers) { first, _ in first } }
        return Array(unique.values)
    }

    var channelCount: Int { entries.keys.count { $0.kind == .channel } }
    var patternCount: Int { entries.keys.count { $0.kind == .pattern } }
}
