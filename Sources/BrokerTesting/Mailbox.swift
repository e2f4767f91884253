import Synchronization

/// An unbounded one-consumer inbox: tasks started by a case report what they saw, and the case
/// awaits each report (under a deadline) in the order they were sent.
final class Mailbox<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<Element?, Never>?
    }
    private let state = Mutex(State())

    func send(_ element: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.items.append(element)
            return nil
        }
        waiter?.resume(returning: element)
    }

    /// The next report, or `nil` if the waiting task was cancelled.
    func next() async -> Element? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: Element?? = state.withLock { state in
                    if !state.items.isEmpty { return .some(state.items.removeFirst()) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    /// The next report within `limit`, or throws naming `what`.
    func receive(within limit: Duration = .seconds(5), _ what: String) async throws -> Element {
        let element = try await withDeadline(what, within: limit) { await self.next() }
        guard let element else { throw CancellationError() }
        return element
    }

    /// What has been sent and not received yet, without waiting.
    func drain() -> [Element] {
        state.withLock { state in
            defer { state.items.removeAll() }
            return state.items
        }
    }
}
