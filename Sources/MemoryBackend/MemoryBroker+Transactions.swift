public import Broker
import Synchronization

extension MemoryBroker {
    nonisolated(nonsending) public func attemptTransaction<Value>(
        watching keys: [String],
        _ body: () async throws -> Transaction<Value>
    ) async throws -> TransactionAttempt<Value> {
        let watch = state.withLock { $0.watch(keys) }
        let transaction: Transaction<Value>
        do {
            transaction = try await body()
        } catch {
            state.withLock { $0.unwatch(watch) }
            throw error
        }
        let commands = transaction.commands
        let (replies, effects) = try state.withLock { store throws(BrokerError) -> ([Reply]?, Effects?) in
            defer { store.unwatch(watch) }
            if store.isConflicted(watch) { return (nil, nil) }
            let replies = try store.applyAtomically(commands)
            return (replies, store.finishCommand())
        }
        effects?.run()
        guard let replies else { return .conflicted }
        return .committed(transaction.value, replies: replies)
    }
}
