/// A message broker: queues (lists of byte strings), pub/sub channels, and key-value with TTL.
///
/// Everything above the backends (job lifecycle, router, gateway) talks to this protocol only,
/// so it runs unchanged on the in-process memory backend and on Redis.
///
/// Most operations are expressed as ``BrokerCommand`` values and run through ``execute(_:)``;
/// the readable methods (`push(_:to:of:)`, `get(_:)`, `set(_:to:expiry:condition:)`, …) are
/// extensions over it. Blocking operations, subscriptions and optimistic transactions hold
/// state across suspension points, so they are requirements of their own.
///
/// ## Implementation requirements
///
/// Every backend must behave as Redis 7 does for the equivalent command, byte for byte, so
/// the shared conformance suite (`BrokerTesting`) passes unchanged against each:
///
/// - Values are opaque bytes: what goes in comes out unchanged.
/// - A key holds one kind of value. A list command on a string key (or the reverse) throws
///   ``BrokerError/Code/wrongType`` and changes nothing. A list that becomes empty ceases to
///   exist, as in Redis.
/// - A key whose TTL has passed is never visible again, to any operation.
/// - Blocking pops and moves serve waiters first-come first-served; with several queues, the
///   first non-empty one in argument order wins. A waiter whose task is cancelled leaves
///   nothing behind: a value pushed later goes to another waiter or stays in the queue.
/// - ``execute(_:atomically:)`` with `atomically: true` applies all commands or none; no
///   other client observes a state in between.
/// - Subscriptions are established before `body` runs (a message published after `body`
///   starts is delivered) and removed when `body` returns or throws.
/// - Errors are ``BrokerError``s. Calls never hang on a lost connection: they fail with
///   ``BrokerError/Code/connectionLost`` (or ``BrokerError/Code/timedOut``).
public protocol Broker: Sendable {
    /// A short name for operators, e.g. `"memory"` or `"redis"` (shown by `/health`).
    var backendName: String { get }

    /// Whether each call is a round trip to a server (Redis: `true`, the default) rather than
    /// a call into this process (memory: `false`). A caller that saves round trips by waiting
    /// at once (a blocking move instead of a move that may come back empty) does so only when
    /// `true`: in process, the empty attempt costs less than the machinery of a wait.
    var callsAreRoundTrips: Bool { get }

    /// Runs one command.
    func execute(_ command: BrokerCommand) async throws -> Reply

    /// Runs several commands in one round trip.
    ///
    /// - Parameter atomically: when `true` (Redis: `MULTI`/`EXEC`), the commands are applied
    ///   all-or-nothing and in isolation; if any would fail (for instance with
    ///   ``BrokerError/Code/wrongType``) none is applied and the call throws. When `false`
    ///   (a pipeline), each command runs on its own and a failed one shows as ``Reply/error(_:)``.
    /// - Returns: one reply per command, in order.
    func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply]

    /// Pops a value from the first non-empty queue among `queues`, waiting up to `timeout`
    /// for one to appear (Redis: `BLPOP`/`BRPOP`).
    ///
    /// - Parameter timeout: `nil` waits until a value arrives or the task is cancelled.
    /// - Returns: the queue and the value, or `nil` on timeout or cancellation.
    func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue?

    /// Atomically pops a value from `source` and pushes it onto `destination`, waiting up to
    /// `timeout` for one to appear (Redis: `BLMOVE`). The value is never in neither list.
    ///
    /// - Returns: the moved value, or `nil` on timeout or cancellation.
    func blockingMove(
        from source: String,
        _ sourceEnd: QueueEnd,
        to destination: String,
        _ destinationEnd: QueueEnd,
        timeout: Duration?
    ) async throws -> [UInt8]?

    /// Subscribes to `channels` and to glob `patterns` (see ``ChannelPattern``) for the
    /// duration of `body`; leaving `body` unsubscribes.
    ///
    /// A message whose channel is subscribed directly and also matches a pattern is delivered
    /// once for each, as in Redis. The subscription's buffer is bounded by `buffering`.
    nonisolated(nonsending) func subscribe<Result>(
        to channels: [String],
        patterns: [String],
        buffering: SubscriptionBuffering,
        _ body: (Subscription) async throws -> Result
    ) async throws -> Result

    /// One attempt at an optimistic transaction (Redis: `WATCH`/`MULTI`/`EXEC`).
    ///
    /// Watches `keys`, then runs `body`, which may read through this broker and returns the
    /// commands to apply. The commands are applied atomically only if no watched key was
    /// modified (written, deleted or expired) since the watch began; otherwise nothing is
    /// applied and the result is ``TransactionAttempt/conflicted``. Use
    /// ``Broker/transaction(watching:maxAttempts:_:)`` for the retry loop.
    ///
    /// The watch begins at the latest with the body's first read through this broker (so
    /// everything the body reads is protected), and a backend may begin it exactly there:
    /// Redis sends `WATCH` in the same write as that read, saving a round trip. A change made
    /// before the body's first read — by anyone — need not conflict: read what the decision
    /// depends on through this broker, inside the body.
    nonisolated(nonsending) func attemptTransaction<Value>(
        watching keys: [String],
        _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value>

    /// Checks that the backend is reachable; throws the reason when it is not.
    func ping() async throws
}

extension Broker {
    /// A backend that does not say otherwise talks to a server.
    public var callsAreRoundTrips: Bool { true }
}
