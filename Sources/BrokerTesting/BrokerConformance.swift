/// The semantics every ``Broker`` backend must share, as one list of independent cases.
///
/// Each case states one behaviour of Redis 7 (observed on a real `redis-server` 7.0.15) or of
/// the Broker contract where it asks more than Redis does. A backend's test target runs every
/// case as its own test:
///
/// ```swift
/// @Test(arguments: BrokerConformance.cases)
/// func conformance(_ check: ConformanceCase) async throws {
///     try await check.run(on: MemoryBroker())
/// }
/// ```
///
/// Cases use only names under their context's random prefix, so they may run in parallel
/// against one shared server, and delete their keys when done. Pass `peer:` to
/// ``ConformanceCase/run(on:peer:)`` so that the cases standing for two nodes (a push from one
/// waking a pop on the other, a write from one conflicting a transaction on the other) use two
/// clients of the same backend.
///
/// ## Where the contract asks more than the Redis commands
///
/// A Redis-backed implementation has to do these itself; each has a case:
///
/// - An atomic batch with a failing command applies nothing (`MULTI`/`EXEC` would apply the
///   commands before the failing one).
/// - A cancelled blocking call returns `nil` only once the server no longer holds it: a value
///   pushed afterwards stays in the queue (closing the connection is not enough, the server may
///   serve the push first).
/// - Leaving a subscription's body returns only once the server has confirmed the
///   unsubscription: a `PUBLISH` right after counts 0.
/// - A subscription's buffer is bounded by its ``SubscriptionBuffering`` policy and counts what
///   it dropped.
/// - Blocking waiters are served in the order they blocked. The API cannot observe that a
///   blocking call has reached the backend, so the cases that depend on that order give each
///   waiter a short grace after it has issued its call (as Redis's own tests wait for
///   `blocked_clients`); nothing is timed.
public enum BrokerConformance {
    /// Every case.
    public static let cases: [ConformanceCase] =
        queueCases + blockingCases + wakeupCases + cancellationCases + keyCases + expiryCases + valueCases
        + channelCases + backpressureCases + batchCases + transactionCases + contentionCases
}
