public import Broker
import Synchronization

extension MemoryBroker {
    public func blockingPop(from end: QueueEnd, of queues: [String], timeout: Duration?) async throws -> PoppedValue? {
        guard !queues.isEmpty else { throw BrokerError(.invalidArgument, "a blocking pop needs at least one queue") }
        if Task.isCancelled { return nil }
        let start: Start<PoppedValue> = try state.withLock { store throws(BrokerError) in
            if let popped = try store.popFirstAvailable(from: queues, end: end) {
                return .done(popped, store.finishCommand())
            }
            guard Self.mayWait(timeout) else { return .done(nil, nil) }
            return .wait(store.enqueueWaiter(on: queues, end: end, destination: nil))
        }
        switch start {
        case .done(let popped, let effects):
            effects?.run()
            return popped
        case .wait(let id):
            switch await outcome(of: id, timeout: timeout) {
            case .taken(let queue, let value): return PoppedValue(queue: queue, value: value)
            case .nothing: return nil
            case .failed(let error): throw error
            }
        }
    }

    public func blockingMove(
        from source: String,
        _ sourceEnd: QueueEnd,
        to destination: String,
        _ destinationEnd: QueueEnd,
        timeout: Duration?
    ) async throws -> [UInt8]? {
        if Task.isCancelled { return nil }
        let start: Start<[UInt8]> = try state.withLock { store throws(BrokerError) in
            if let value = try store.move(source, sourceEnd, destination, destinationEnd) {
                return .done(value, store.finishCommand())
            }
            guard Self.mayWait(timeout) else { return .done(nil, nil) }
            return .wait(store.enqueueWaiter(
                on: [source], end: sourceEnd, destination: (queue: destination, end: destinationEnd)))
        }
        switch start {
        case .done(let value, let effects):
            effects?.run()
            return value
        case .wait(let id):
            switch await outcome(of: id, timeout: timeout) {
            case .taken(_, let value): return value
            case .nothing: return nil
            case .failed(let error): throw error
            }
        }
    }

    /// How a blocking call began: served at once (or not allowed to wait), or registered.
    private enum Start<Value: Sendable>: Sendable {
        case done(Value?, Effects?)
        case wait(UInt64)
    }

    /// A zero or negative timeout means "do not wait" (Redis's `0`, forever, is `nil` here).
    private static func mayWait(_ timeout: Duration?) -> Bool {
        guard let timeout else { return true }
        return timeout > .zero
    }

    /// Waits for registered waiter `id` to be served, racing the timeout in a child task.
    ///
    /// Whoever settles the waiter first under the lock (a push, the timer, cancellation)
    /// decides the outcome, so a value handed over is never lost to a timeout.
    private func outcome(of id: UInt64, timeout: Duration?) async -> WaitOutcome {
        guard let timeout else { return await waitForWaiter(id) }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await self.clock.sleep(timeout)
                } catch {
                    return  // cancelled: the waiter was served (or its caller cancelled)
                }
                self.settleWaiter(id, with: .nothing)
            }
            let outcome = await waitForWaiter(id)
            group.cancelAll()
            return outcome
        }
    }

    private func waitForWaiter(_ id: UInt64) async -> WaitOutcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if let outcome = state.withLock({ $0.attach(continuation, to: id) }) {
                    continuation.resume(returning: outcome)
                }
            }
        } onCancel: {
            settleWaiter(id, with: .nothing)
        }
    }

    /// Ends waiter `id` with `outcome` unless it was settled already; resumes it outside the lock.
    private func settleWaiter(_ id: UInt64, with outcome: WaitOutcome) {
        state.withLock { $0.settle(id, with: outcome) }?.resume(returning: outcome)
    }
}
