import DequeModule
import Synchronization

/// The id of a ``Session``, unique within its ``SessionRegistry``.
public struct SessionID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let value: UInt64
    public init(_ value: UInt64) { self.value = value }
    public static func < (lhs: SessionID, rhs: SessionID) -> Bool { lhs.value < rhs.value }
    public var description: String { "s\(value)" }
}

/// Why a session ended.
public enum SessionCloseReason: Sendable, Hashable, CustomStringConvertible {
    /// The transport closed it (the client went away, or the server ended the connection).
    case closed
    /// The client did not take its events fast enough: more than `capacity` events waited,
    /// or more event data than the session's byte limit.
    case slowConsumer(capacity: Int)
    /// The router is shutting down.
    case shutdown

    public var description: String {
        switch self {
        case .closed: return "closed"
        case .slowConsumer(let capacity): return "slow consumer: more than \(capacity) events, or its byte limit, waiting"
        case .shutdown: return "server shutting down"
        }
    }
}

/// One client connection, whatever its transport (Socket.IO, plain WebSocket, SSE): a user,
/// the rooms it is in, and the events on their way to it.
///
/// The transport iterates the session (`for await event in session`) and writes each event
/// to its connection; iteration ends when the session closes. Events wait in a bounded
/// buffer: if more than `capacity` wait, or more than `byteCapacity` bytes of event data (a
/// few large events fill memory long before the count is reached), the session is closed as a
/// ``SessionCloseReason/slowConsumer(capacity:)`` — the transport sees iteration end, reads
/// ``closeReason`` and reports it (WebSocket close 1008/1013, Socket.IO disconnect, end of
/// the SSE stream). Memory per session is bounded whatever the client does.
///
/// A session delivers each numbered event at most once: it remembers the ids it handed over
/// (the last 1,024) and skips repeats, and never hands over an id at or below the client's
/// `lastEventId`. That is what makes replay on connect race-free: live events arriving while
/// the log is read are held, then released after the replayed ones, and whatever the log
/// already had is skipped. Events go out in the order they arrive, which is id order when the
/// broker delivers a user's events in the order they were committed (Redis does).
///
/// The transport must call ``close()`` when its connection ends; that removes the session
/// from every room.
public final class Session: AsyncSequence, Sendable, CustomStringConvertible {
    public typealias Element = RoutedEvent
    public typealias Failure = Never

    /// Unique within the registry.
    public let id: SessionID
    /// The authenticated user; the session is in room `user:<userId>`.
    public let userId: String
    /// A label for operators: `"socket.io"`, `"websocket"`, `"sse"`.
    public let transport: String
    /// The most events that may wait for the transport.
    public let capacity: Int
    /// The most event data (names and JSON data, in bytes) that may wait; one event larger
    /// than this still goes out when nothing else waits.
    public let byteCapacity: Int
    let registry: SessionRegistry
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var buffer = Deque<RoutedEvent>()
        /// The size (``Session/size(of:)``) of what `buffer` and `held` hold.
        var bufferedBytes = 0
        var heldBytes = 0
        var waiter: CheckedContinuation<RoutedEvent?, Never>?
        var closeReason: SessionCloseReason?
        var replaying: Bool
        var held: [RoutedEvent] = []
        /// The highest event id handed over.
        var lastEventId: EventID?
        /// Ids at or below it are never handed over (the client's `lastEventId`).
        var floor: EventID?
        /// The ids handed over recently, to skip repeats without relying on arrival order.
        var recent = Set<EventID>()
        var recentOrder = Deque<EventID>()
        var delivered = 0
        /// Push delivery: called when events become available or the session closes.
        var wake: (@Sendable () -> Void)?
        var ignoredLastEventId: String?
        /// The user's last event id when the session's replay was read: catching up after a
        /// loss starts from here when the session has had no event since.
        var sequenceAtOpen: EventID?
        /// Where the events a catch-up owes begin (see ``markForCatchUp()``); `nil` when none is owed.
        var catchUpFrom: EventID?
        /// Whether `replaying` holds live events for a catch-up rather than the first replay.
        var holdingForCatchUp = false
        /// Events thrown away when the session closed as a slow consumer.
        var discarded = 0
        /// How many losses ``markForCatchUp()`` noted.
        var catchUpMarks: UInt64 = 0
    }

    init(
        id: SessionID, userId: String, transport: String, capacity: Int, byteCapacity: Int, replaying: Bool,
        registry: SessionRegistry
    ) {
        self.id = id
        self.userId = userId
        self.transport = transport
        self.capacity = Swift.max(1, capacity)
        self.byteCapacity = Swift.max(1, byteCapacity)
        self.registry = registry
        self.state = Mutex(State(replaying: replaying))
    }

    public var description: String { "Session(\(id), user: \(userId), \(transport))" }

    /// Why the session closed, or `nil` while it is open.
    public var closeReason: SessionCloseReason? { state.withLock { $0.closeReason } }

    /// Whether the session is closed.
    public var isClosed: Bool { closeReason != nil }

    /// The id of the last numbered event handed to this session (replayed or live).
    public var lastEventId: EventID? { state.withLock { $0.lastEventId } }

    /// The `lastEventId` the client presented if it was ignored, not being one this system
    /// issued (see ``Router/connect(userId:lastEventId:transport:capacity:)``): the session
    /// replayed as for a client that presented none.
    public var ignoredLastEventId: String? { state.withLock { $0.ignoredLastEventId } }

    func ignore(lastEventId: String) {
        state.withLock { $0.ignoredLastEventId = lastEventId }
    }

    func noteSequence(at id: EventID) {
        state.withLock { $0.sequenceAtOpen = id }
    }

    /// How many events were thrown away because the session fell behind: those waiting when it
    /// closed as a ``SessionCloseReason/slowConsumer(capacity:)``, and the one that overflowed.
    /// The client never got them (a reconnect with its `lastEventId` replays the logged ones).
    public var discardedCount: Int { state.withLock { $0.discarded } }

    /// How many events this session has been handed.
    public var deliveredCount: Int { state.withLock { $0.delivered } }

    /// How many events wait for the transport.
    public var bufferedCount: Int { state.withLock { $0.buffer.count } }

    /// The rooms the session is in (its user room included).
    public var rooms: Set<String> { registry.rooms(of: self) }

    /// Joins `room` at the client's request, if the registry's ``RoomPolicy`` admits it.
    public func join(_ room: String) throws(RoomError) {
        try registry.join(self, room: room)
    }

    /// Leaves `room`. The user room cannot be left. Returns whether the session was in it.
    @discardableResult
    public func leave(_ room: String) -> Bool {
        registry.leave(self, room: room)
    }

    /// Closes the session (the transport's connection ended): iteration ends, the session
    /// leaves every room. Closing again does nothing.
    public func close() {
        close(reason: .closed)
    }

    // MARK: Delivery

    /// How many recent event ids a session remembers to skip repeats.
    static let recentWindow = 1024

    /// What ``deliver(_:)`` did.
    enum Delivery { case queued, held, duplicate, closed, overflowed }

    /// Hands `event` to the session. Never blocks.
    func deliver(_ event: RoutedEvent) -> Delivery {
        var resume: (CheckedContinuation<RoutedEvent?, Never>, RoutedEvent)?
        var wake: (@Sendable () -> Void)?
        let outcome: Delivery = state.withLock { state in
            if state.closeReason != nil { return .closed }
            if state.replaying {
                let size = Self.size(of: event)
                guard state.held.count < capacity, state.held.isEmpty || state.heldBytes + size <= byteCapacity else {
                    overflow(&state, alsoDiscarding: 1)
                    return .overflowed
                }
                state.held.append(event)
                state.heldBytes += size
                return .held
            }
            let wasEmpty = state.buffer.isEmpty
            let outcome = enqueue(event, into: &state, resume: &resume)
            if outcome == .queued, wasEmpty, !state.buffer.isEmpty { wake = state.wake }
            return outcome
        }
        if let (waiter, event) = resume { waiter.resume(returning: event) }
        wake?()
        if outcome == .overflowed { endAfterOverflow() }
        return outcome
    }

    /// Notes that events may have been missed (the router did not hear `ws:emit` for a while and
    /// hears it again) and holds live events from now on, as during replay, so that the ones
    /// missed, read from the log, go out first (``finishCatchUp(with:)``). Called where the
    /// loss is noticed, before any later event is delivered: where the session stands then
    /// (the last event it was handed, else its user's last event id when it opened) is where
    /// the missed events begin. Nothing changes if the session is closed or still holds for
    /// its first replay, which covers the loss.
    func markForCatchUp() {
        state.withLock { state in
            guard state.closeReason == nil, !state.replaying || state.holdingForCatchUp,
                let position = EventID.later(state.lastEventId, state.sequenceAtOpen)
            else { return }
            state.catchUpFrom = state.catchUpFrom.map { Swift.min($0, position) } ?? position
            state.catchUpMarks &+= 1
            state.replaying = true
            state.holdingForCatchUp = true
        }
    }

    /// Where the events owed by a catch-up begin, or `nil` if none is owed, with the count of
    /// losses noted so far (for ``finishCatchUp(with:after:)``). Holds live events again if an
    /// earlier catch-up released them without the log (it could not read it).
    func beginCatchUp() -> (from: EventID, marks: UInt64)? {
        state.withLock { state in
            guard state.closeReason == nil, let from = state.catchUpFrom else { return nil }
            if !state.replaying {
                state.replaying = true
                state.holdingForCatchUp = true
            }
            return (from, state.catchUpMarks)
        }
    }

    /// Ends a catch-up's hold: hands over `missed` (oldest first; the session skips those it
    /// has), then the live events held meanwhile. `nil` means the log could not be read: the
    /// held events go out now, and the next catch-up still starts where this one did (the
    /// missed events then come after newer ones, but come). So does one after another loss
    /// was noted while the log was read (`marks` is no longer the count): the log may have
    /// been read before that loss's events were written. Returns what ``finishReplay(with:after:)``
    /// returns (`nil` if the session held nothing for a catch-up).
    @discardableResult
    func finishCatchUp(with missed: [RoutedEvent]?, after marks: UInt64) -> EventID? {
        let holding = state.withLock { state in
            if missed != nil, state.catchUpMarks == marks { state.catchUpFrom = nil }
            defer { state.holdingForCatchUp = false }
            return state.holdingForCatchUp
        }
        return holding ? finishReplay(with: missed ?? []) : nil
    }

    /// Ends replay (or a catch-up's hold): hands over `replayed` (oldest first), then the live
    /// events that arrived meanwhile, skipping any already delivered and any not above `floor`
    /// (the client's `lastEventId`: it has those; `nil` keeps the floor as it was). Returns
    /// the highest event id this call handed over, replayed or held (`nil` if none, or if the
    /// session was closed): what may count as delivered to the user. Held events do not count
    /// before, since a session that closes mid-replay never sends them.
    @discardableResult
    func finishReplay(with replayed: [RoutedEvent], after floor: EventID? = nil) -> EventID? {
        var resume: (CheckedContinuation<RoutedEvent?, Never>, RoutedEvent)?
        var overflowed = false
        var wake: (@Sendable () -> Void)?
        let handed: EventID? = state.withLock { state in
            guard state.closeReason == nil, state.replaying else { return nil }
            state.replaying = false
            if let floor { state.floor = floor }
            let held = state.held
            state.held = []
            state.heldBytes = 0
            let events = replayed + held
            var handed: EventID?
            for (index, event) in events.enumerated() {
                let outcome = enqueue(event, into: &state, resume: &resume)
                if outcome == .queued { handed = EventID.later(handed, event.eventId) }
                guard outcome != .overflowed else {
                    // The rest of the batch goes with what was waiting.
                    state.discarded += events.count - index - 1
                    overflowed = true
                    break
                }
            }
            if !state.buffer.isEmpty { wake = state.wake }
            return handed
        }
        if let (waiter, event) = resume { waiter.resume(returning: event) }
        wake?()
        if overflowed { endAfterOverflow() }
        return handed
    }

    private func enqueue(
        _ event: RoutedEvent, into state: inout State, resume: inout (CheckedContinuation<RoutedEvent?, Never>, RoutedEvent)?
    ) -> Delivery {
        if state.closeReason != nil { return .closed }
        if let id = event.eventId {
            // Repeats are recognised by id, not by order: two nodes may publish a user's events
            // in an order that differs from their ids, and a later id must not hide an earlier one.
            if let floor = state.floor, id <= floor { return .duplicate }
            if state.recent.contains(id) { return .duplicate }
            if state.recentOrder.count >= Self.recentWindow {
                // Older than everything remembered: it can only be a repeat.
                if let oldest = state.recentOrder.first, id < oldest { return .duplicate }
                state.recent.remove(state.recentOrder.removeFirst())
            }
            state.recent.insert(id)
            state.recentOrder.append(id)
            if state.lastEventId.map({ $0 < id }) ?? true { state.lastEventId = id }
        }
        if let waiter = state.waiter {
            state.waiter = nil
            state.delivered += 1
            resume = (waiter, event)
            return .queued
        }
        let size = Self.size(of: event)
        guard state.buffer.count < capacity, state.buffer.isEmpty || state.bufferedBytes + size <= byteCapacity else {
            overflow(&state, alsoDiscarding: 1)
            return .overflowed
        }
        state.buffer.append(event)
        state.bufferedBytes += size
        state.delivered += 1
        return .queued
    }

    /// What an event weighs against ``byteCapacity``: its name and data as they go out
    /// (UTF-8 counts of native strings, read without a scan).
    static func size(of event: RoutedEvent) -> Int { event.name.utf8.count + event.dataJSON.utf8.count }

    /// Takes the oldest waiting event off the buffer.
    private static func popFirst(_ state: inout State) -> RoutedEvent? {
        guard let event = state.buffer.popFirst() else { return nil }
        state.bufferedBytes -= size(of: event)
        return event
    }

    /// Ends iteration and leaves the registry after an overflow (outside the lock).
    private func endAfterOverflow() {
        let (waiter, wake) = state.withLock { state in
            defer {
                state.waiter = nil
                state.wake = nil
            }
            return (state.waiter, state.wake)
        }
        // Leave the registry first, counted as slow: the wake-up may make the transport close
        // the session at once, and that close must not be the one that removes it.
        registry.remove(self, slow: true)
        waiter?.resume(returning: nil)
        wake?()
    }

    /// Closes as a slow consumer, discarding what waits and `extra` events not yet queued.
    private func overflow(_ state: inout State, alsoDiscarding extra: Int) {
        state.discarded += state.buffer.count + state.held.count + extra
        state.closeReason = .slowConsumer(capacity: capacity)
        state.buffer.removeAll()
        state.held.removeAll()
        (state.bufferedBytes, state.heldBytes) = (0, 0)
    }

    /// Closes with `reason`; returns `false` if it was already closed.
    @discardableResult
    func close(reason: SessionCloseReason) -> Bool {
        let (changed, waiter, wake) = state.withLock {
            state -> (Bool, CheckedContinuation<RoutedEvent?, Never>?, (@Sendable () -> Void)?) in
            guard state.closeReason == nil else { return (false, nil, nil) }
            state.closeReason = reason
            state.buffer.removeAll()
            state.held.removeAll()
            (state.bufferedBytes, state.heldBytes) = (0, 0)
            defer {
                state.waiter = nil
                state.wake = nil
            }
            return (true, state.waiter, state.wake)
        }
        waiter?.resume(returning: nil)
        wake?()
        // A session already closed left the registry when it closed (or leaves it now, in the
        // overflow path, counted as slow).
        if changed { registry.remove(self) }
        return changed
    }

    // MARK: Push delivery

    /// Push delivery, for a transport that writes from callbacks rather than from a task waiting
    /// on the session: `wake` is called (outside the lock, on the delivering thread) when events
    /// become available after none waited, and once when the session closes; the transport then
    /// takes them with ``take(max:)`` until none is left. Called at once if events already wait
    /// or the session is closed. This replaces iteration: a session has one consumer.
    public func onAvailable(_ wake: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            guard state.closeReason == nil else { return true }
            state.wake = wake
            return !state.buffer.isEmpty
        }
        if now { wake() }
    }

    /// Takes up to `max` of the events waiting, oldest first, without waiting for any.
    public func take(max: Int) -> [RoutedEvent] {
        state.withLock { state in
            let count = Swift.min(max, state.buffer.count)
            guard count > 0 else { return [] }
            var events: [RoutedEvent] = []
            events.reserveCapacity(count)
            for _ in 0..<count { events.append(Self.popFirst(&state)!) }
            return events
        }
    }

    // MARK: AsyncSequence

    fileprivate func next() async -> RoutedEvent? {
        enum Immediate { case event(RoutedEvent), end, wait }
        let immediate: Immediate = state.withLock { state in
            if state.closeReason != nil { return .end }
            if let event = Self.popFirst(&state) { return .event(event) }
            return .wait
        }
        switch immediate {
        case .event(let event): return event
        case .end: return nil
        case .wait: break
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RoutedEvent?, Never>) in
                let now: Immediate = state.withLock { state in
                    if state.closeReason != nil || Task.isCancelled { return .end }
                    if let event = Self.popFirst(&state) { return .event(event) }
                    precondition(state.waiter == nil, "a Session supports one consumer at a time")
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .event(let event): continuation.resume(returning: event)
                case .end: continuation.resume(returning: nil)
                case .wait: break
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
        public typealias Element = RoutedEvent
        fileprivate let session: Session

        public mutating func next() async -> RoutedEvent? {
            await session.next()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> RoutedEvent? {
            await session.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(session: self)
    }
}
