import DequeModule
import Synchronization

/// Turns to wait on the queue: at most `count` holders at once, the others waiting in line in
/// this process (first come, first served). An agent's workers take one before a blocking
/// move, so that an idle agent of any concurrency keeps only a few takes (on Redis: a few
/// connections) waiting on the server.
final class TakeTurns: Sendable {
    private struct State {
        var available: Int
        var waiting: Deque<(id: UInt64, continuation: CheckedContinuation<Void, any Error>)> = []
        var nextId: UInt64 = 0
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(available: max(1, count)))
    }

    /// Waits for a turn. Throws `CancellationError` if the task is cancelled first (holding no
    /// turn then). Pair each successful call with one ``release()``.
    func acquire() async throws {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    // Checked under the lock the cancellation handler takes too: a cancellation
                    // either comes before this (and is seen here) or finds the waiter below.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.available > 0 {
                        state.available -= 1
                        return .success(())
                    }
                    state.waiting.append((id, continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    /// Gives a turn back: to the first in line, if any.
    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if let first = state.waiting.popFirst() { return first.continuation }
            state.available += 1
            return nil
        }
        next?.resume()
    }

    /// How many wait for a turn (for tests).
    var waitingCount: Int { state.withLock { $0.waiting.count } }
}
