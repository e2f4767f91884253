public import Broker

/// One named check of broker semantics, run against a backend by that backend's test target.
///
/// Every case is independent: it works only on names under its context's unique prefix, so a
/// backend's test target may run all cases in parallel against one shared server:
///
/// ```swift
/// @Test(arguments: BrokerConformance.cases)
/// func conformance(_ check: ConformanceCase) async throws {
///     try await check.run(on: MemoryBroker())
/// }
/// ```
public struct ConformanceCase: Sendable, CustomStringConvertible, Identifiable {
    /// A short sentence naming the behaviour checked, e.g. `"queues: LPUSH then BRPOP is FIFO"`.
    public let name: String
    /// The check itself. Failures are recorded with `#expect`/`#require`; errors thrown fail it.
    public let body: @Sendable (ConformanceContext) async throws -> Void

    public init(_ name: String, _ body: @escaping @Sendable (ConformanceContext) async throws -> Void) {
        self.name = name
        self.body = body
    }

    public var id: String { name }
    public var description: String { name }

    /// Runs the case against `broker`.
    ///
    /// - Parameters:
    ///   - broker: the broker under test.
    ///   - peer: a second client of the same backend, standing for another gateway node (for
    ///     Redis: a second connection to the same server). Defaults to `broker` itself, which is
    ///     right for an in-process backend.
    public func run(on broker: any Broker, peer: (any Broker)? = nil) async throws {
        let context = ConformanceContext(broker: broker, peer: peer ?? broker)
        do {
            try await body(context)
        } catch {
            await context.removeKeys()
            throw error
        }
        await context.removeKeys()
    }
}
