import DequeModule
import Synchronization

/// The messages of one subscription, as an `AsyncSequence`; handed to the body of
/// ``Broker/subscribe(to:patterns:buffering:_:)`` and valid only inside it.
///
/// One consumer iterates it at a time. Iteration ends (returns `nil`) when the subscription is
/// closed or the consuming task is cancelled, and throws when the backend ends it with an
/// error (an overflow under the `.disconnect` policy, a broker shut down). A backend that
/// reconnects keeps the subscription alive across the outage.
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = ChannelMessage
    public typealias Failure = any Error

    private struct State: ~Copyable {
        var buffer = Deque<ChannelMessage>()
        var waiter: CheckedContinuation<ChannelMessage?, any Error>?
        var finished = false
        var failure: BrokerError?
        var dropped = 0
        var delivered = 0
        /// Set by ``handleMessages(_:)``: messages go to it instead of the buffer.
        var handler: (@Sendable (ChannelMessage) -> Void)?
        /// A thread is calling `handler`; what arrives meanwhile is buffered for it.
        var handling = false
        var handlerDone: CheckedContinuation<Void, any Error>?
        var resumedHandlers: [@Sendable () -> Void] = []
    }

    /// The channels and patterns this subscription listens to.
    public let channels: [String]
    public let patterns: [String]
    public let buffering: SubscriptionBuffering
    private let state = Mutex(State())

    /// Made by backends, which feed it with ``deliver(_:)``.
    package init(channels: [String], patterns: [String], buffering: SubscriptionBuffering) {
        self.channels = channels
        self.patterns = patterns
        self.buffering = buffering
    }

    /// How many messages the buffer policy has dropped so far.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// How many messages wait in the buffer.
    public var bufferedCount: Int { state.withLock { $0.buffer.count } }

    /// Hands a message to the consumer (called by backends). Never blocks.
    /// - Returns: `false` if the message was dropped (full buffer, or subscription closed).
    @discardableResult
    package func deliver(_ message: ChannelMessage) -> Bool {
        let capacity = buffering.capacity
        enum Action {
            case resume(CheckedContinuation<ChannelMessage?, any Error>)
            case handle(@Sendable (ChannelMessage) -> Void)
            case none, dropped
        }
        let action: Action = state.withLock { state in
            if state.finished { return .dropped }
            state.delivered += 1
            if let handler = state.handler, !state.handling {
                state.handling = true
                return .handle(handler)
            }
            if let waiter = state.waiter {
                state.waiter = nil
                return .resume(waiter)
            }
            if state.buffer.count < capacity {
                state.buffer.append(message)
                return .none
            }
            state.dropped += 1
            switch buffering {
            case .dropOldest:
                state.buffer.removeFirst()
                state.buffer.append(message)
                return .none
            case .dropNewest:
                return .dropped
            case .disconnect:
                state.finished = true
                state.failure = BrokerError(
                    .subscriberOverflow, "subscriber fell more than \(capacity) messages behind")
                return .dropped
            }
        }
        switch action {
        case .resume(let waiter):
            waiter.resume(returning: message)
            return true
        case .handle(let handler):
            handle(message, with: handler)
            return true
        case .none: return true
        case .dropped: return false
        }
    }

    /// Calls `handler` with `first` (if any), then with whatever was buffered meanwhile, until
    /// the buffer is empty; the caller holds the `handling` flag, which this releases.
    private func handle(_ first: ChannelMessage?, with handler: @Sendable (ChannelMessage) -> Void) {
        func buffered() -> ChannelMessage? {
            state.withLock { state in
                if let message = state.buffer.popFirst() { return message }
                state.handling = false
                return nil
            }
        }
        var next = first ?? buffered()
        while let message = next {
            handler(message)
            next = buffered()
        }
    }

    /// Hands every message to `handler` as the backend delivers it, on the delivering thread,
    /// until the subscription ends (returns; throws if the backend ended it with an error) or
    /// the calling task is cancelled (returns). An alternative to iterating, for consumers whose
    /// work per message is short and never waits: it saves the hop to a task per message.
    ///
    /// `handler` is called for one message at a time, in delivery order, first for those
    /// buffered before this call. It may run on a backend's I/O thread or while the backend
    /// holds its own locks, so it must not block, wait for anything, or call into the broker.
    public func handleMessages(_ handler: @escaping @Sendable (ChannelMessage) -> Void) async throws {
        let drain: Bool = state.withLock { state in
            precondition(state.handler == nil && state.waiter == nil, "a Subscription supports one consumer at a time")
            state.handler = handler
            guard !state.buffer.isEmpty, !state.handling else { return false }
            state.handling = true
            return true
        }
        if drain { handle(nil, with: handler) }
        defer { state.withLock { $0.handler = nil } }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate: Result<Void, any Error>? = state.withLock { state in
                    if state.finished {
                        if let failure = state.failure {
                            state.failure = nil
                            return .failure(failure)
                        }
                        return .success(())
                    }
                    if Task.isCancelled { return .success(()) }
                    state.handlerDone = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let done = state.withLock { state in
                defer { state.handlerDone = nil }
                return state.handlerDone
            }
            done?.resume()
        }
    }

    /// Registers `handler`, called each time the backend has subscribed again after losing
    /// its connection (and with it the messages published in between: pub/sub keeps nothing).
    /// A consumer that must not miss anything catches up from a record of its own there.
    /// Called on a backend thread once the subscription is confirmed again: it must not block.
    public func onResumedAfterLoss(_ handler: @escaping @Sendable () -> Void) {
        state.withLock { $0.resumedHandlers.append(handler) }
    }

    /// Tells the consumer that messages may have been lost and the subscription is live again
    /// (called by backends; see ``onResumedAfterLoss(_:)``).
    package func resumedAfterLoss() {
        let handlers = state.withLock { $0.finished ? [] : $0.resumedHandlers }
        for handler in handlers { handler() }
    }

    /// Ends the subscription (called by backends): the consumer gets what is buffered, then
    /// `nil`, or `error` if given.
    package func finish(throwing error: BrokerError? = nil) {
        let (waiter, handlerDone) = state.withLock {
            state -> (CheckedContinuation<ChannelMessage?, any Error>?, CheckedContinuation<Void, any Error>?) in
            guard !state.finished else { return (nil, nil) }
            state.finished = true
            state.failure = error
            if let handlerDone = state.handlerDone {
                // A handler already had every message but those a running call will still take.
                state.handlerDone = nil
                state.failure = nil
                return (nil, handlerDone)
            }
            guard state.buffer.isEmpty else { return (nil, nil) }
            defer { state.waiter = nil }
            return (state.waiter, nil)
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
        if let handlerDone {
            if let error { handlerDone.resume(throwing: error) } else { handlerDone.resume() }
        }
    }

    fileprivate func next() async throws -> ChannelMessage? {
        enum Immediate { case message(ChannelMessage), end, fail(BrokerError), wait }
        let immediate: Immediate = state.withLock { state in
            if let message = state.buffer.popFirst() { return .message(message) }
            if state.finished {
                if let failure = state.failure {
                    state.failure = nil
                    return .fail(failure)
                }
                return .end
            }
            return .wait
        }
        switch immediate {
        case .message(let message): return message
        case .end: return nil
        case .fail(let error): throw error
        case .wait: break
        }
        if Task.isCancelled { return nil }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let resumeNow: Immediate? = state.withLock { state in
                    if let message = state.buffer.popFirst() { return .message(message) }
                    if state.finished {
                        if let failure = state.failure { state.failure = nil; return .fail(failure) }
                        return .end
                    }
                    if Task.isCancelled { return .end }
                    precondition(
                        state.waiter == nil && state.handler == nil, "a Subscription supports one consumer at a time")
                    state.waiter = continuation
                    return nil
                }
                switch resumeNow {
                case .message(let message): continuation.resume(returning: message)
                case .end: continuation.resume(returning: nil)
                case .fail(let error): continuation.resume(throwing: error)
                case .wait, nil: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = ChannelMessage
        fileprivate let subscription: Subscription

        public mutating func next() async throws -> ChannelMessage? {
            try await subscription.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(subscription: self)
    }
}
