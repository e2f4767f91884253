import Broker
import Testing

/// A waiting pop is woken by a push whichever way the push comes: a plain push, `LMOVE`,
/// `BLMOVE`, an atomic batch, a pipeline, a transaction. (Redis serves blocked clients after
/// each command, `EXEC` or script, from the list as it is then.)
extension BrokerConformance {
    static let wakeupCases: [ConformanceCase] = [
        ConformanceCase("wake-up: a waiting pop is woken by LMOVE, BLMOVE, an atomic batch, a pipeline, a transaction") {
            t async throws in
            let queue = t.key("q"), source = t.key("source")
            try await t.broker.push(["m1", "m2"].map(\.bytes), to: .head, of: source)
            let woken = try await wakeWaiter(t, on: queue) {
                _ = try await t.peer.move(from: source, .tail, to: queue, .head)
            }
            #expect(woken == "m1", "woken by LMOVE")
            #expect(
                try await wakeWaiter(t, on: queue) {
                    _ = try await t.peer.blockingMove(from: source, .tail, to: queue, .head, timeout: .seconds(5))
                } == "m2", "woken by BLMOVE")
            #expect(
                try await wakeWaiter(t, on: queue) {
                    _ = try await t.peer.execute([.push(["batch"].map(\.bytes), end: .head, queue: queue)], atomically: true)
                } == "batch", "woken by an atomic batch")
            #expect(
                try await wakeWaiter(t, on: queue) {
                    _ = try await t.peer.execute([.push(["pipe"].map(\.bytes), end: .head, queue: queue)], atomically: false)
                } == "pipe", "woken by a pipeline")
            #expect(
                try await wakeWaiter(t, on: queue) {
                    _ = try await t.peer.transaction(watching: [queue]) {
                        Transaction(commands: [.push(["tx"].map(\.bytes), end: .head, queue: queue)])
                    }
                } == "tx", "woken by a transaction")
            #expect(try await t.broker.length(of: queue) == 0)
        },
        ConformanceCase("wake-up: a value pushed and popped inside one atomic batch never reaches a waiter") {
            t async throws in
            let queue = t.key("q")
            let woken = try await wakeWaiter(t, on: queue) {
                let replies = try await t.peer.execute(
                    [.push(["ghost"].map(\.bytes), end: .head, queue: queue), .pop(end: .tail, queue: queue)],
                    atomically: true)
                #expect(replies == [.integer(1), .value("ghost".bytes)])
                try await t.peer.push("real", to: .head, of: queue)
            }
            #expect(woken == "real")
            #expect(try await t.broker.length(of: queue) == 0)
        },
    ]

    /// Starts a blocking pop on `queue`, lets it register, runs `push`, and returns what the
    /// waiter received.
    static func wakeWaiter(
        _ t: ConformanceContext, on queue: String, _ push: @escaping @Sendable () async throws -> Void
    ) async throws -> String? {
        let started = Mailbox<Bool>()
        return try await withDeadline("the waiter on \(queue) to be woken") {
            try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    started.send(true)
                    return try await t.broker.blockingPop(from: .tail, of: queue, timeout: .seconds(10))?.text
                }
                _ = await started.next()
                try await t.letWaitersRegister()
                try await push()
                return try await group.next() ?? nil
            }
        }
    }
}
