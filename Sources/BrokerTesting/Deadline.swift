import Synchronization

/// A conformance check that could not complete, with what it was waiting for.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Runs `body` and returns its result, or throws ``ConformanceFailure`` naming `what` if it has
/// not finished within `limit` (then `body`'s task is cancelled).
///
/// This is how the suite waits for something to happen: never a fixed sleep, always the event
/// itself, bounded so that a backend that never delivers fails the case instead of hanging it.
/// `body` runs in a task of its own that is *not* awaited after the deadline, so even a backend
/// that ignores cancellation cannot hang the suite.
@discardableResult
public func withDeadline<T: Sendable>(
    _ what: String,
    within limit: Duration = .seconds(5),
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                race.finish(.failure(ConformanceFailure("timed out after \(limit) waiting for: \(what)")))
            }
            race.setWork(
                Task {
                    do {
                        race.finish(.success(try await body()))
                    } catch {
                        race.finish(.failure(error))
                    }
                    timer.cancel()
                })
        }
    } onCancel: {
        race.cancelWork()
    }
}

/// Polls `condition` until it holds, within `limit`. Only for states the backend offers no
/// event for (a key's TTL running out, a buffer filling from another connection); the poll
/// interval is short and the result never depends on timing, only on the state reached.
public func eventually(
    _ what: String,
    within limit: Duration = .seconds(5),
    _ condition: @escaping @Sendable () async throws -> Bool
) async throws {
    try await withDeadline(what, within: limit) {
        while try await !condition() {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// The first of "body finished" and "deadline passed" resumes the caller; the other is ignored.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var done = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func setWork(_ work: Task<Void, Never>) {
        let cancelNow = state.withLock { state in
            state.work = work
            return state.done
        }
        if cancelNow { work.cancel() }
    }

    func cancelWork() {
        state.withLock { $0.work }?.cancel()
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, work) = state.withLock { state in
            defer {
                state.continuation = nil
                state.done = true
            }
            return (state.continuation, state.work)
        }
        guard let continuation else { return }
        continuation.resume(with: result)
        // After a timeout, stop the work; after success this cancels a finished task (harmless).
        work?.cancel()
    }
}
