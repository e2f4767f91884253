public import Broker
public import ServiceLifecycle
public import Synchronization

/// The in-process backend: queues, pub/sub and key-value with TTL in this process's memory,
/// with Redis's semantics byte for byte, so everything above the ``Broker`` protocol behaves
/// the same here as on Redis.
///
/// All state sits behind one `Mutex`; every command runs synchronously under it (no actor
/// hop), and whatever must happen outside it (waking a blocked pop, delivering a message) is
/// done after it is released. Blocked pops wait on continuations, woken by the push that
/// serves them. Keys expire lazily when touched and by a periodic sweep in ``run()``, so run
/// the broker as a `Service` (or call `run()` in a task) to have expired keys' memory returned.
///
/// ```swift
/// let broker = MemoryBroker()
/// try await broker.push("job-1", to: .head, of: "agent:rebalance:jobs")
/// let id = try await broker.blockingPop(from: .tail, of: "agent:rebalance:jobs", timeout: .seconds(5))
/// ```
public final class MemoryBroker: Broker, Service {
    public var backendName: String { "memory" }

    /// Calls run in this process: a move that finds the queue empty costs less than a wait.
    public var callsAreRoundTrips: Bool { false }

    @usableFromInline let state: Mutex<MemoryStore>
    let clock: BrokerClock
    let sweepInterval: Duration

    /// Makes an empty broker on `clock` (inject a manual clock to drive TTLs in tests).
    ///
    /// - Parameter sweepInterval: how often ``run()`` removes expired keys.
    public init<C: Clock>(clock: C, sweepInterval: Duration = .seconds(1)) where C.Duration == Duration {
        let clock = BrokerClock(clock)
        self.clock = clock
        self.sweepInterval = sweepInterval
        self.state = Mutex(MemoryStore(now: clock.now))
    }

    /// Makes an empty broker on the continuous clock.
    public convenience init(sweepInterval: Duration = .seconds(1)) {
        self.init(clock: ContinuousClock(), sweepInterval: sweepInterval)
    }

    nonisolated(nonsending) public func execute(_ command: BrokerCommand) async throws -> Reply {
        // Publishing is the hot path of fan-out: skip the effects machinery.
        if case .publish(let payload, let channel) = command {
            // Delivered under the lock, so concurrent publishers' messages arrive in the order
            // they were published, as Redis delivers them.
            let publication = state.withLock { store in
                let publication = store.publication(of: payload, on: channel)
                publication.deliver()
                return publication
            }
            return .integer(Int64(publication.receivers))
        }
        let (reply, effects) = try state.withLock { store throws(BrokerError) in
            let reply = try store.apply(command)
            return (reply, store.finishCommand())
        }
        effects?.run()
        return reply
    }

    nonisolated(nonsending) public func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply] {
        let (replies, effects) = try state.withLock { store throws(BrokerError) in
            if atomically {
                let replies = try store.applyAtomically(commands)
                return (replies, store.finishCommand())
            }
            // A pipeline: each command on its own, waiters served between them as Redis does.
            var replies: [Reply] = []
            replies.reserveCapacity(commands.count)
            for command in commands {
                do throws(BrokerError) {
                    replies.append(try store.apply(command))
                } catch {
                    replies.append(.error(error))
                }
                if !store.readyQueues.isEmpty { store.serveReadyQueues() }
            }
            return (replies, store.takeEffects())
        }
        effects?.run()
        return replies
    }

    public func ping() async throws {}

    /// Removes expired keys every `sweepInterval` until graceful shutdown or cancellation.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while true {
                do {
                    try await self.clock.sleep(self.sweepInterval)
                } catch {
                    return
                }
                self.sweepExpired()
            }
        }
    }

    /// Removes the keys whose deadline's second is over; returns how many went. The lock is
    /// taken once per 1,024 keys visited, so that a burst of expiries (a million records
    /// created together, a day earlier) does not stop every other call until all are gone.
    @discardableResult
    package func sweepExpired() -> Int {
        var count = 0
        while true {
            let (expired, more, effects) = state.withLock { store in
                let (expired, more) = store.sweepExpired(limit: 1024)
                return (expired, more, store.takeEffects())
            }
            effects?.run()
            count += expired
            if !more { return count }
        }
    }

    /// How many keys are stored, expired ones not yet removed included (for tests and stats).
    package var storedKeyCount: Int { state.withLock { $0.keyCount } }

    /// How many listings the expiry sweep holds, stale ones included (for tests).
    package var expiryListingCount: Int { state.withLock { $0.expiring.count } }

    /// How many entries the key table holds, emptied lists awaiting the sweep included.
    package var tableSize: Int { state.withLock { $0.entries.count } }

    /// How many blocked pops and moves are registered (for tests and stats).
    package var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// How many subscriptions are registered (for tests and stats).
    package var subscriberCount: Int { state.withLock { $0.subscriberCount } }

    /// How many optimistic transactions are watching keys (for tests).
    package var watchCount: Int { state.withLock { $0.watches.count } }
}
