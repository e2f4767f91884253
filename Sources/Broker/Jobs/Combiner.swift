import DequeModule
import Synchronization

/// Group commit without a background task: concurrent callers queue their requests, and one
/// of them at a time — the leader — handles its own request together with those queued behind
/// it, in one batch (one broker transaction instead of one per caller, and no conflicts
/// between callers of the same node). It then hands the lead to the next waiting caller, whose
/// batch holds whatever queued meanwhile. Requests are handled in arrival order.
///
/// A waiting caller is not cancellable: its request is already on its way, as a sent command
/// would be; it waits at most for one batch before its own. A leader that is cancelled fails
/// only its own request: the others it carried are handed back to their callers.
package final class Combiner<Request: Sendable, Response: Sendable>: Sendable {
    package typealias Outcome = Result<Response, any Error>

    private enum Turn: Sendable {
        case done(Outcome)
        case lead
        /// The leader was cancelled before handling this request: submit it again.
        case retry
    }

    private struct Waiter: Sendable {
        let request: Request
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State: ~Copyable {
        var waiting = Deque<Waiter>()
        var leading = false
    }

    private let maxBatch: Int
    private let state = Mutex(State())

    /// Requests waiting for a leader (for tests).
    package var waitingCount: Int { state.withLock { $0.waiting.count } }

    package init(maxBatch: Int) {
        self.maxBatch = max(1, maxBatch)
    }

    /// Handles `request`, in a batch with others, through `process` (which returns one outcome
    /// per request, in order).
    package func submit(_ request: Request, process: ([Request]) async -> [Outcome]) async throws -> Response {
        while true {
            if let response = try await attempt(request, process: process) { return response }
        }
    }

    private func attempt(_ request: Request, process: ([Request]) async -> [Outcome]) async throws -> Response? {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let lead = state.withLock { state in
                if state.leading {
                    state.waiting.append(Waiter(request: request, continuation: continuation))
                    return false
                }
                state.leading = true
                return true
            }
            if lead { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .done(let outcome):
            return try outcome.get()
        case .retry:
            return nil
        case .lead:
            let others = state.withLock { state in
                var batch: [Waiter] = []
                while batch.count < maxBatch - 1, let waiter = state.waiting.popFirst() { batch.append(waiter) }
                return batch
            }
            let outcomes = await process([request] + others.map(\.request))
            precondition(outcomes.count == others.count + 1, "a batch handler returns one outcome per request")
            // A cancelled leader's cancellation must not fail the requests it carried for others:
            // those that failed (whatever the error said) go back to their own callers, who try
            // again in their own tasks.
            let leaderCancelled = Task.isCancelled
            for (waiter, outcome) in zip(others, outcomes.dropFirst()) {
                if leaderCancelled, case .failure = outcome {
                    waiter.continuation.resume(returning: .retry)
                } else {
                    waiter.continuation.resume(returning: .done(outcome))
                }
            }
            let next = state.withLock { state -> Waiter? in
                if let next = state.waiting.popFirst() { return next }
                state.leading = false
                return nil
            }
            next?.continuation.resume(returning: .lead)
            return try outcomes[0].get()
        }
    }
}
