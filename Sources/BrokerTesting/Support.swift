import Broker
import Synchronization
import Testing

extension String {
    /// The UTF-8 bytes, as brokers store them.
    var bytes: [UInt8] { Array(utf8) }
}

extension Array where Element == UInt8 {
    /// The bytes as text, for readable failure messages.
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Expects `body` to throw a ``BrokerError`` with `code`; records an issue otherwise.
func expectBrokerError(
    _ code: BrokerError.Code,
    _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("\(what): expected BrokerError.\(code), but it succeeded", sourceLocation: sourceLocation)
    } catch let error as BrokerError {
        #expect(error.code == code, "\(what): expected \(code), got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): expected BrokerError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}

extension ConformanceContext {
    /// Gives blocking calls already issued time to reach the backend, so that waiters started
    /// one after another register in that order.
    ///
    /// The Broker API offers no way to observe that a blocking pop is registered (Redis's own
    /// test suite polls `INFO blocked_clients` for this), so the cases that depend on waiter
    /// order call this after each waiter has *issued* its call: a round trip through both
    /// clients, then a short grace. It only orders waiters; no case's outcome is timed.
    func letWaitersRegister() async throws {
        try await broker.ping()
        try await peer.ping()
        try await Task.sleep(for: .milliseconds(60))
    }

    /// The whole content of `queue`, as text.
    func contents(of queue: String) async throws -> [String] {
        try await broker.range(of: queue).map(\.text)
    }
}

/// Reports of tasks started by a case: which task, and what its blocking call returned.
struct WaiterReport: Sendable, Equatable {
    var waiter: Int
    var value: String?
}

/// A counter shared by the tasks of one case.
final class SharedCounter: Sendable {
    private let count = Mutex(0)

    /// Adds `amount` and returns the new total.
    @discardableResult
    func add(_ amount: Int = 1) -> Int {
        count.withLock { count in
            count += amount
            return count
        }
    }

    var value: Int { count.withLock { $0 } }
}
