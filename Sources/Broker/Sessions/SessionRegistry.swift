import Synchronization

/// This node's sessions and the rooms they are in: transport-neutral (Socket.IO, plain
/// WebSocket and SSE connections are all ``Session``s) and local (other nodes have their
/// own; ``Router`` reaches them through `ws:emit`).
///
/// A session is in `user:<userId>` from its opening to its closing; other rooms it joins at
/// the client's request under the ``RoomPolicy``, or by the server's decision
/// (``joinTrusted(_:room:)``). A user may hold any number of sessions. Closing a session
/// removes it from every room, and an empty room ceases to exist: the registry holds nothing
/// for a connection that is gone.
///
/// All state sits behind one `Mutex`; deliveries happen outside it, so a broadcast never
/// holds the lock while touching sessions.
public final class SessionRegistry: Sendable {
    /// What clients may join.
    public let policy: RoomPolicy
    /// Default outbound buffer of a session (events waiting for the transport).
    public let outboundCapacity: Int
    /// The most event data, in bytes, that may wait for one session (``Session/byteCapacity``):
    /// the count alone would let a client that stops reading hold `outboundCapacity` large
    /// events (1,024 messages of 512 KiB on `ws:emit` are half a gigabyte).
    public let outboundByteCapacity: Int
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var sessions: [SessionID: Session] = [:]
        var rooms: [String: [SessionID: Session]] = [:]
        var membership: [SessionID: Set<String>] = [:]
        var nextId: UInt64 = 1
        var counters = SessionCounters()
    }

    public init(policy: RoomPolicy = .default, outboundCapacity: Int = 1024, outboundByteCapacity: Int = 8 << 20) {
        self.policy = policy
        self.outboundCapacity = max(1, outboundCapacity)
        self.outboundByteCapacity = max(1, outboundByteCapacity)
    }

    /// Opens a session for `userId`, already in room `user:<userId>`.
    ///
    /// - Parameters:
    ///   - transport: a label for operators (`"websocket"`, `"sse"`, `"socket.io"`).
    ///   - capacity: the outbound buffer (default ``outboundCapacity``).
    ///   - replaying: hold live events until ``Session/finishReplay(with:)`` (used by
    ///     ``Router/connect(userId:lastEventId:transport:capacity:)``).
    public func open(userId: String, transport: String, capacity: Int? = nil) -> Session {
        open(userId: userId, transport: transport, capacity: capacity, replaying: false)
    }

    func open(userId: String, transport: String, capacity: Int?, replaying: Bool) -> Session {
        let userRoom = JobNames.userRoom(userId)
        return state.withLock { state in
            let id = SessionID(state.nextId)
            state.nextId += 1
            let session = Session(
                id: id, userId: userId, transport: transport, capacity: capacity ?? outboundCapacity,
                byteCapacity: outboundByteCapacity, replaying: replaying, registry: self)
            state.sessions[id] = session
            state.rooms[userRoom, default: [:]][id] = session
            state.membership[id] = [userRoom]
            state.counters.opened += 1
            return session
        }
    }

    /// Joins `session` to `room` at the client's request.
    /// - Throws: ``RoomError`` when the policy refuses, or the session is closed.
    public func join(_ session: Session, room: String) throws(RoomError) {
        if let refusal = policy.refusal(for: room) { throw refusal }
        try join(session, room: room, limit: policy.maxRoomsPerSession)
    }

    /// Joins `session` to `room` by the server's decision: no policy check (a transport
    /// following a job, say). Never use it for a room name a client chose.
    public func joinTrusted(_ session: Session, room: String) throws(RoomError) {
        try join(session, room: room, limit: nil)
    }

    private func join(_ session: Session, room: String, limit: Int?) throws(RoomError) {
        let result: RoomError? = state.withLock { state in
            guard var rooms = state.membership[session.id] else { return .sessionClosed }
            if rooms.contains(room) { return nil }
            // The user room does not count against the limit.
            if let limit, rooms.count - 1 >= limit { return .tooManyRooms(limit: limit) }
            rooms.insert(room)
            state.membership[session.id] = rooms
            state.rooms[room, default: [:]][session.id] = session
            return nil
        }
        if let result { throw result }
    }

    /// Removes `session` from `room`; its own user room cannot be left. Returns whether it
    /// was in the room.
    @discardableResult
    public func leave(_ session: Session, room: String) -> Bool {
        guard room != JobNames.userRoom(session.userId) else { return false }
        return state.withLock { state in
            guard state.membership[session.id]?.remove(room) != nil else { return false }
            Self.removeMember(session.id, from: room, in: &state)
            return true
        }
    }

    /// The rooms `session` is in (none once closed).
    public func rooms(of session: Session) -> Set<String> {
        state.withLock { $0.membership[session.id] ?? [] }
    }

    /// The open sessions in `room`.
    public func sessions(in room: String) -> [Session] {
        state.withLock { state in state.rooms[room].map { Array($0.values) } ?? [] }
    }

    /// Whether `userId` has an open session on this node.
    public func hasSessions(ofUser userId: String) -> Bool {
        state.withLock { $0.rooms[JobNames.userRoom(userId)] != nil }
    }

    /// Hands `event` to every session in `room`, without waiting for any.
    @discardableResult
    public func broadcast(_ event: RoutedEvent, to room: String) -> BroadcastResult {
        let members = sessions(in: room)
        var result = BroadcastResult()
        for session in members {
            switch session.deliver(event) {
            case .queued: result.delivered += 1
            case .held: result.held += 1
            case .duplicate: result.duplicates += 1
            case .overflowed: result.overflowed += 1
            case .closed: break
            }
        }
        state.withLock { state in
            state.counters.eventsDelivered += result.delivered + result.held
            state.counters.duplicatesSkipped += result.duplicates
        }
        return result
    }

    /// Hands `event` to the room it names (``RoutedEvent/room``).
    @discardableResult
    public func broadcast(_ event: RoutedEvent) -> BroadcastResult {
        broadcast(event, to: event.room)
    }

    /// The open sessions, by user.
    func sessionsByUser() -> [String: [Session]] {
        let all = state.withLock { Array($0.sessions.values) }
        return Dictionary(grouping: all, by: \.userId)
    }

    /// Every open session notes that it may have missed events (``Session/markForCatchUp()``).
    func markAllForCatchUp() {
        let all = state.withLock { Array($0.sessions.values) }
        for session in all { session.markForCatchUp() }
    }

    /// Closes every session (for instance on shutdown).
    public func closeAll(reason: SessionCloseReason = .shutdown) {
        let all = state.withLock { Array($0.sessions.values) }
        for session in all { session.close(reason: reason) }
    }

    /// Current sizes.
    public var counts: SessionCounts {
        state.withLock { state in
            let users = state.rooms.keys.reduce(0) { $0 + ($1.hasPrefix(RoutedEvent.userRoomPrefix) ? 1 : 0) }
            return SessionCounts(sessions: state.sessions.count, rooms: state.rooms.count, users: users)
        }
    }

    /// Totals since start.
    public var counters: SessionCounters { state.withLock { $0.counters } }

    /// Forgets `session` (called when it closes).
    func remove(_ session: Session, slow: Bool = false) {
        state.withLock { state in
            guard state.sessions.removeValue(forKey: session.id) != nil else { return }
            for room in state.membership.removeValue(forKey: session.id) ?? [] {
                Self.removeMember(session.id, from: room, in: &state)
            }
            state.counters.closed += 1
            if slow { state.counters.slowClosed += 1 }
        }
    }

    private static func removeMember(_ id: SessionID, from room: String, in state: inout State) {
        guard var members = state.rooms[room] else { return }
        members.removeValue(forKey: id)
        state.rooms[room] = members.isEmpty ? nil : members
    }
}

/// What one broadcast did.
public struct BroadcastResult: Sendable, Hashable {
    /// Sessions that took the event (it waits for their transport).
    public var delivered = 0
    /// Sessions that hold the event until their replay (or catch-up) ends: it goes out then,
    /// after the events read from the log, unless the session closes first.
    public var held = 0
    /// Sessions that already had it (same or later event id).
    public var duplicates = 0
    /// Sessions closed because their buffer was full.
    public var overflowed = 0
    public init() {}
}

/// The registry's current sizes (for `/health` and `/api/v1/stats`).
public struct SessionCounts: Sendable, Hashable {
    /// Open sessions (connections) on this node.
    public var sessions: Int
    /// Rooms with at least one session (user rooms included).
    public var rooms: Int
    /// Users with at least one session.
    public var users: Int

    public init(sessions: Int, rooms: Int, users: Int) {
        self.sessions = sessions
        self.rooms = rooms
        self.users = users
    }
}

/// The registry's totals since start.
public struct SessionCounters: Sendable, Hashable {
    public var opened = 0
    public var closed = 0
    /// Sessions closed because they fell more than their capacity behind.
    public var slowClosed = 0
    /// Event deliveries (one per event per session).
    public var eventsDelivered = 0
    /// Deliveries skipped because the session already had the event.
    public var duplicatesSkipped = 0

    public init() {}
}
