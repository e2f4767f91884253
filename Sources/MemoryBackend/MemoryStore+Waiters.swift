import Broker
import DequeModule

/// How a blocking pop or move ended.
enum WaitOutcome: Sendable {
    /// A value was taken from `queue` (and, for a move, already pushed onto the destination).
    case taken(queue: String, value: [UInt8])
    /// Timed out or cancelled: nothing was taken.
    case nothing
    /// The value could not be moved (the destination holds a string); nothing changed.
    case failed(BrokerError)
}

/// A blocked `BLPOP`/`BRPOP`/`BLMOVE` caller.
struct Waiter {
    enum State {
        /// Registered, its continuation not attached yet (it is made right after).
        case pending
        case waiting(CheckedContinuation<WaitOutcome, Never>)
        /// Settled before the continuation was attached; attaching returns this at once.
        case settled(WaitOutcome)
    }

    var state: State
    let queues: [String]
    let end: QueueEnd
    let destination: (queue: String, end: QueueEnd)?
}

extension MemoryStore {
    /// Registers a waiter at the back of each of `queues`' lines; returns its id.
    mutating func enqueueWaiter(
        on queues: [String], end: QueueEnd, destination: (queue: String, end: QueueEnd)?
    ) -> UInt64 {
        let id = makeID()
        var unique: [String] = []
        for queue in queues where !unique.contains(queue) { unique.append(queue) }
        waiters[id] = Waiter(state: .pending, queues: unique, end: end, destination: destination)
        for queue in unique { queueWaiters[queue, default: []].append(id) }
        return id
    }

    /// Attaches the continuation of waiter `id`; returns the outcome if it is already settled.
    mutating func attach(_ continuation: CheckedContinuation<WaitOutcome, Never>, to id: UInt64) -> WaitOutcome? {
        guard let waiter = waiters[id] else { return .nothing }
        switch waiter.state {
        case .pending:
            waiters[id]!.state = .waiting(continuation)
            return nil
        case .settled(let outcome):
            waiters[id] = nil
            return outcome
        case .waiting:
            preconditionFailure("a waiter's continuation is attached once")
        }
    }

    /// Ends waiter `id` with `outcome` if it still waits. Returns the continuation to resume
    /// (outside the lock), or `nil` if it was settled already or has no continuation yet.
    mutating func settle(_ id: UInt64, with outcome: WaitOutcome) -> CheckedContinuation<WaitOutcome, Never>? {
        guard let waiter = waiters[id] else { return nil }
        switch waiter.state {
        case .pending:
            removeFromLines(id, waiter.queues)
            waiters[id]!.state = .settled(outcome)
            return nil
        case .waiting(let continuation):
            removeFromLines(id, waiter.queues)
            waiters[id] = nil
            return continuation
        case .settled:
            return nil
        }
    }

    private mutating func removeFromLines(_ id: UInt64, _ queues: [String]) {
        for queue in queues {
            guard var line = queueWaiters.removeValue(forKey: queue) else { continue }
            if line.first == id {
                line.removeFirst()
            } else if let index = line.firstIndex(of: id) {
                line.remove(at: index)
            }
            if !line.isEmpty { queueWaiters[queue] = line }
        }
    }

    /// Hands values in queues that received some to their waiters, first come first served,
    /// until each such queue is empty or has no waiter left. A move lands its value in the
    /// destination at once, which may in turn serve a waiter there.
    mutating func serveReadyQueues() {
        var index = 0
        while index < readyQueues.count {
            let key = readyQueues[index]
            index += 1
            while let id = queueWaiters[key]?.first, let waiter = waiters[id] {
                // A key that became a string within the same batch serves nobody (as in Redis).
                if let index = liveIndex(key), !entries.values[index].isList { break }
                do {
                    let value: [UInt8]?
                    if let destination = waiter.destination {
                        value = try move(key, waiter.end, destination.queue, destination.end)
                    } else {
                        value = try pop(end: waiter.end, queue: key)
                    }
                    // Empty (or gone): the rest of this queue's waiters keep waiting.
                    guard let value else { break }
                    complete(id, with: .taken(queue: key, value: value))
                } catch {
                    // A BLMOVE whose destination holds a string: Redis answers that waiter
                    // WRONGTYPE and leaves the value where it is.
                    complete(id, with: .failed(error))
                }
            }
        }
        readyQueues.removeAll(keepingCapacity: true)
    }

    private mutating func complete(_ id: UInt64, with outcome: WaitOutcome) {
        if let continuation = settle(id, with: outcome) {
            effects.resumptions.append((continuation, outcome))
        }
    }

    /// Tries a blocking pop without blocking: the first non-empty queue in argument order
    /// wins; a queue holding a string throws, as Redis checks the keys in order.
    mutating func popFirstAvailable(from queues: [String], end: QueueEnd) throws(BrokerError) -> PoppedValue? {
        for queue in queues {
            if let value = try pop(end: end, queue: queue) { return PoppedValue(queue: queue, value: value) }
        }
        return nil
    }
}
