/// The semantics every ``Broker`` backend must share, as one list of independent cases.
///
/// Each case states one behaviour of Redis 7 (observed on a real `redis-server`) or of the
/// Broker contract where that adds to Redis (an atomic batch that fails applies nothing; a
/// bounded subscription buffer). A backend's test target runs every case as its own test:
///
/// ```swift
/// @Test(arguments: BrokerConformance.cases)
/// func conformance(_ check: ConformanceCase) async throws {
///     try await check.run(on: MemoryBroker())
/// }
/// ```
///
/// Cases use only names under their context's random prefix, so they may run in parallel
/// against one shared server. Pass `peer:` to ``ConformanceCase/run(on:peer:)`` to have the
/// cases that stand for two nodes use two clients.
public enum BrokerConformance {
    /// Every case.
    public static let cases: [ConformanceCase] =
        queueCases + blockingCases + wakeupCases + cancellationCases + keyCases + expiryCases + valueCases
        + channelCases + backpressureCases + batchCases + transactionCases + contentionCases
}
