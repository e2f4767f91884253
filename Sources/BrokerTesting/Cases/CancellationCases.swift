import Broker
import Testing

/// A blocking call whose task is cancelled returns `nil` and leaves nothing behind.
extension BrokerConformance {
    static let cancellationCases: [ConformanceCase] = [
        ConformanceCase("cancellation: a cancelled waiting pop returns nil; a later push stays in the queue") { t async throws in
            let queue = t.key("q")
            let started = Mailbox<Bool>()
            let waiter = Task {
                started.send(true)
                return try await t.broker.blockingPop(from: .tail, of: queue, timeout: nil)
            }
            _ = try await started.receive("the waiter to start")
            try await t.letWaitersRegister()
            waiter.cancel()
            try await expectNilAfterCancellation("blockingPop") { try await waiter.value?.text }
            try await t.peer.push("kept", to: .head, of: queue)
            #expect(try await t.contents(of: queue) == ["kept"], "the cancelled waiter must not take the value")
        },
        ConformanceCase("cancellation: a cancelled waiting move returns nil; the value stays in the source") { t async throws in
            let source = t.key("source"), destination = t.key("destination")
            let started = Mailbox<Bool>()
            let waiter = Task {
                started.send(true)
                return try await t.broker.blockingMove(from: source, .tail, to: destination, .head, timeout: nil)
            }
            _ = try await started.receive("the waiter to start")
            try await t.letWaitersRegister()
            waiter.cancel()
            try await expectNilAfterCancellation("blockingMove") { try await waiter.value?.text }
            try await t.peer.push("kept", to: .head, of: source)
            #expect(try await t.contents(of: source) == ["kept"])
            #expect(try await t.broker.timeToLive(of: destination) == .missing)
        },
        ConformanceCase("cancellation: after the first waiter is cancelled, the value goes to the next waiter") { t async throws in
            let queue = t.key("q")
            let firstStarted = Mailbox<Bool>(), secondStarted = Mailbox<Bool>()
            let first = Task {
                firstStarted.send(true)
                return try await t.broker.blockingPop(from: .tail, of: queue, timeout: nil)
            }
            _ = try await firstStarted.receive("the first waiter to start")
            try await t.letWaitersRegister()
            let second = Task {
                secondStarted.send(true)
                return try await t.peer.blockingPop(from: .tail, of: queue, timeout: .seconds(10))
            }
            defer { second.cancel() }
            _ = try await secondStarted.receive("the second waiter to start")
            try await t.letWaitersRegister()
            first.cancel()
            try await expectNilAfterCancellation("the first blockingPop") { try await first.value?.text }
            try await t.broker.push("next", to: .head, of: queue)
            let value = try await withDeadline("the second waiter to receive the value") {
                try await second.value
            }
            #expect(value?.text == "next")
            #expect(try await t.broker.length(of: queue) == 0)
        },
    ]

    /// Awaits a cancelled call's result (within a deadline) and expects `nil`, as the Broker
    /// protocol documents for cancelled blocking calls.
    static func expectNilAfterCancellation(
        _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ result: @escaping @Sendable () async throws -> String?
    ) async throws {
        do {
            let value = try await withDeadline("the cancelled \(what) to return", result)
            #expect(value == nil, "a cancelled \(what) returned \(value ?? "")", sourceLocation: sourceLocation)
        } catch is CancellationError {
            Issue.record("a cancelled \(what) must return nil, not throw CancellationError", sourceLocation: sourceLocation)
        }
    }
}
