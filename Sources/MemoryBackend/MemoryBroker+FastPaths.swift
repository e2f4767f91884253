public import Broker
public import Synchronization

/// Direct versions of the hottest ``Broker`` conveniences, for callers that hold a
/// `MemoryBroker` itself: same names, same semantics, but one call into the store instead of
/// a chain of generic async calls through `execute(_:)` and a command value.
///
/// They are `@inlinable` so that a caller's loop pays no async call of its own per command:
/// only the lock and the store's work. Code written against `any Broker` or `some Broker` uses the protocol's versions, which
/// behave identically.
extension MemoryBroker {
    /// Pushes one value onto `end` of `queue`. Returns the queue's new length.
    @discardableResult
    @inlinable
    nonisolated(nonsending) public func push(_ value: [UInt8], to end: QueueEnd, of queue: String) async throws -> Int {
        let (count, effects) = try state.withLock { store throws(BrokerError) in
            let count = try store.push(one: value, end: end, queue: queue)
            return (count, store.finishCommand())
        }
        effects?.run()
        return count
    }

    /// Pops a value from `end` of `queue`, or `nil` if it is empty.
    @inlinable
    nonisolated(nonsending) public func pop(from end: QueueEnd, of queue: String) async throws -> [UInt8]? {
        // A pop never fills a queue, so it never has waiters to serve.
        try state.withLock { store throws(BrokerError) in try store.pop(end: end, queue: queue) }
    }

    /// Publishes `payload` on `channel`; returns how many subscriptions received it.
    @discardableResult
    @inlinable
    nonisolated(nonsending) public func publish(_ payload: [UInt8], to channel: String) async throws -> Int {
        let publication = state.withLock { $0.publication(of: payload, on: channel) }
        publication.deliver()
        return publication.receivers
    }
}
