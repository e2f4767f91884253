import DequeModule
import Synchronization

/// A bounded single-producer single-consumer queue for the router's status lanes: the
/// producer waits while the queue is full, so a burst of status messages backs up into the
/// (also bounded) subscription buffer instead of growing memory here.
final class LaneQueue<Element: Sendable>: Sendable {
    private struct State: ~Copyable {
        var items = Deque<Element>()
        var consumer: CheckedContinuation<Element?, Never>?
        var producer: CheckedContinuation<Void, Never>?
        var finished = false
    }

    private enum PushStep { case done, resume(CheckedContinuation<Element?, Never>), full }
    private enum NextStep { case element(Element, CheckedContinuation<Void, Never>?), end, wait }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Appends `element`, waiting while the queue is full. Dropped if the queue is finished.
    func push(_ element: Element) async {
        while true {
            let step: PushStep = state.withLock { state in
                if state.finished { return .done }
                if let consumer = state.consumer {
                    state.consumer = nil
                    return .resume(consumer)
                }
                guard state.items.count < capacity else { return .full }
                state.items.append(element)
                return .done
            }
            switch step {
            case .done: return
            case .resume(let consumer):
                consumer.resume(returning: element)
                return
            case .full:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state in
                        guard !state.finished, state.items.count >= capacity else { return true }
                        state.producer = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
        }
    }

    /// The next element, or `nil` once finished and drained.
    func next() async -> Element? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
            let step: NextStep = state.withLock { state in
                if let element = state.items.popFirst() {
                    defer { state.producer = nil }
                    return .element(element, state.producer)
                }
                if state.finished { return .end }
                state.consumer = continuation
                return .wait
            }
            switch step {
            case .element(let element, let producer):
                producer?.resume()
                continuation.resume(returning: element)
            case .end: continuation.resume(returning: nil)
            case .wait: break
            }
        }
    }

    /// The next elements, up to `limit`, waiting for at least one; `nil` once finished and
    /// drained.
    func nextBatch(limit: Int) async -> [Element]? {
        guard let first = await next() else { return nil }
        let (rest, producer) = state.withLock { state -> ([Element], CheckedContinuation<Void, Never>?) in
            var rest: [Element] = []
            while rest.count < limit - 1, let element = state.items.popFirst() { rest.append(element) }
            defer { if !rest.isEmpty { state.producer = nil } }
            return (rest, rest.isEmpty ? nil : state.producer)
        }
        producer?.resume()
        return [first] + rest
    }

    /// Ends the queue: the consumer drains what is queued, then gets `nil`; a waiting
    /// producer returns.
    func finish() {
        let (consumer, producer) = state.withLock { state in
            state.finished = true
            defer {
                state.producer = nil
                if state.items.isEmpty { state.consumer = nil }
            }
            return (state.items.isEmpty ? state.consumer : nil, state.producer)
        }
        consumer?.resume(returning: nil)
        producer?.resume()
    }
}
