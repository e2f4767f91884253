public import Logging
public import ServiceLifecycle
import Synchronization

/// Routes job status to users and events to sessions, on every gateway node alike.
///
/// - It listens to each job type's status channel (`agent:<type>:status`); every node hears
///   every update, and the node whose transaction applies it (``JobStore/apply(_:fields:)``)
///   numbers it, logs it in `ws:pending:user:<userId>` and publishes it on `ws:emit` — once,
///   whatever the number of nodes.
/// - It listens to `ws:emit` (SPEC §3.4: `{userId|room, event, data}`) and hands every event
///   to the sessions of its room on this node through the ``SessionRegistry``. Job events
///   reach sessions the same way, so one path serves every node and transport.
/// - It connects new sessions with replay (``connect(userId:lastEventId:transport:capacity:)``)
///   and keeps each user's delivered watermark for offline delivery (see ``EventLog``).
///
/// A transport uses it like this (the same for Socket.IO, plain WebSocket and SSE):
///
/// ```swift
/// let session = try await router.connect(userId: userId, lastEventId: lastEventId, transport: "websocket")
/// defer { session.close() }                        // leaves every room
/// for await event in session {                     // replayed events first, then live ones
///     try await send(event.name, event.dataJSON, id: event.eventId)
/// }
/// if case .slowConsumer = session.closeReason { /* close 1013 "try again later" */ }
/// ```
///
/// and for the HTTP API: `try await router.jobs().create(payload:for:)`,
/// `router.jobs().lookup(_:for:)`, `router.canFollow(jobId:userId:)`, `router.stats`.
///
/// `run()` holds the subscriptions, the status lanes and the watermark writer; it ends on
/// graceful shutdown (or cancellation), closing this node's sessions with
/// ``SessionCloseReason/shutdown``. A subscription that fails (a broker going away for good,
/// an overflow) is opened again after ``RouterConfiguration/resubscribeDelay``.
public final class Router: Service, Sendable {
    /// The broker shared by all nodes.
    public let broker: any Broker
    /// This node's sessions and rooms.
    public let registry: SessionRegistry
    /// The configuration it was made with.
    public let configuration: RouterConfiguration
    /// The job types, by type name.
    public let stores: [String: JobStore]
    let logger: Logger
    /// Keeps a flood of malformed `ws:emit` messages from flooding the log (all are counted).
    let logThrottle = LogThrottle()
    private let state = Mutex(State())
    let watermarkStream: AsyncStream<Void>
    private let watermarkContinuation: AsyncStream<Void>.Continuation
    /// Signalled when `ws:emit` was heard again after a loss (see ``catchUpSessions()``).
    let catchUpStream: AsyncStream<Void>
    private let catchUpContinuation: AsyncStream<Void>.Continuation
    /// Signalled when a session's replay was deferred (see ``connect(userId:lastEventId:transport:capacity:)``).
    let replayStream: AsyncStream<Void>
    let replayContinuation: AsyncStream<Void>.Continuation

    struct State {
        var pendingWatermarks: [String: EventID] = [:]
        /// Watermarks taken from `pendingWatermarks` whose write has not completed yet.
        var writingWatermarks: [String: EventID] = [:]
        /// Sessions whose replay waits for the broker to answer again (see Router+Replay.swift).
        var deferredReplays: [DeferredReplay] = []
        var replaysFinished = false
        var statusSubscribed = false
        var emitSubscribed = false
        var readyWaiters: [CheckedContinuation<Void, Never>] = []
        var emitReceived = 0
        var emitMalformed = 0
        var watermarksWritten = 0
        var running = false

        var isReady: Bool { statusSubscribed && emitSubscribed }
    }

    /// - Parameters:
    ///   - registry: the node's session registry (make your own to set a ``RoomPolicy``).
    ///   - clock: the wall clock for ids and timestamps (injectable for tests).
    public init(
        broker: any Broker, configuration: RouterConfiguration = RouterConfiguration(),
        registry: SessionRegistry = SessionRegistry(), logger: Logger = Logger(label: "switchboard.router"),
        clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.broker = broker
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        var stores: [String: JobStore] = [:]
        for names in configuration.jobTypes {
            stores[names.type] = JobStore(
                broker: broker, names: names, eventLog: configuration.eventLog, logger: logger, clock: clock)
        }
        self.stores = stores
        (watermarkStream, watermarkContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (catchUpStream, catchUpContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (replayStream, replayContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The users' event logs.
    public var eventLog: EventLog { configuration.eventLog }

    /// The store of job type `type` (`"rebalance"`).
    /// - Throws: ``JobError/unknownJobType(_:)`` if the router was not configured with it.
    public func jobs(_ type: String = "rebalance") throws(JobError) -> JobStore {
        guard let store = stores[type] else { throw .unknownJobType(type) }
        return store
    }

    // MARK: Sessions (connect: Router+Replay.swift)

    /// Whether `userId` may follow `jobId` (its own job, of any configured type).
    public func canFollow(jobId: String, userId: String) async throws -> Bool {
        for store in stores.values where try await store.canFollow(jobId: jobId, userId: userId) {
            return true
        }
        return false
    }

    /// The logged events of `userId` after `eventId` (all when `nil`), oldest first.
    public func events(of userId: String, after eventId: EventID?) async throws -> [RoutedEvent] {
        try await eventLog.events(of: userId, after: eventId, on: broker)
    }

    // MARK: Emitting

    /// Sends `name` with `data` to every session of `userId`, on every node (through
    /// `ws:emit`, like other services do).
    ///
    /// - Parameter durable: also number the event, log it, and so replay it to connections
    ///   that missed it. Otherwise it reaches the sessions open now and is gone.
    public func emit(_ name: String, data: JSONValue, toUser userId: String, durable: Bool = false) async throws {
        guard !name.isEmpty else { throw RouterError.invalidEventName }
        guard JobID.isAcceptable(userId) else { throw JobError.invalidUser }
        let room = JobNames.userRoom(userId)
        guard durable else {
            try await broker.publish(RoutedEvent(name: name, room: room, data: data).emitMessage, to: JobNames.emitChannel)
            return
        }
        let sequenceKey = eventLog.sequenceKey(userId)
        let broker = self.broker
        let eventLog = self.eventLog
        _ = try await broker.transaction(watching: [sequenceKey]) {
            let time = Timestamp.now()
            let eventId = EventID.next(after: EventLog.eventId(stored: try await broker.get(sequenceKey)), now: time)
            var numbered = data
            if case .object(var members) = data {
                members["eventId"] = .string(eventId.description)
                numbered = .object(members)
            }
            let event = RoutedEvent(name: name, room: room, data: numbered, eventId: eventId, timestamp: time)
            return Transaction(commands: eventLog.appendCommands(event))
        }
    }

    /// Sends `name` with `data` to every session in `room`, on every node.
    public func emit(_ name: String, data: JSONValue, toRoom room: String) async throws {
        guard !name.isEmpty else { throw RouterError.invalidEventName }
        try await broker.publish(RoutedEvent(name: name, room: room, data: data).emitMessage, to: JobNames.emitChannel)
    }

    // MARK: Readiness and figures

    /// Returns once `run()` has subscribed to the status channels and `ws:emit` (events
    /// published from then on are heard).
    public func waitUntilSubscribed() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.isReady { return true }
                state.readyWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// This node's figures.
    public var stats: RouterStats {
        let (received, malformed, written, subscriptions) = state.withLock { state in
            (
                state.emitReceived, state.emitMalformed, state.watermarksWritten,
                (state.statusSubscribed ? stores.count : 0) + (state.emitSubscribed ? 1 : 0)
            )
        }
        return RouterStats(
            counts: registry.counts, sessions: registry.counters, subscriptions: subscriptions,
            jobs: stores.mapValues(\.counters), emitReceived: received, emitMalformed: malformed,
            watermarksWritten: written)
    }

    func withState<T>(_ body: (inout State) -> T) -> T {
        state.withLock { body(&$0) }
    }

    func watermarkSignalYield() {
        watermarkContinuation.yield()
    }

    func finishWatermarks() {
        watermarkContinuation.finish()
    }

    func catchUpSignalYield() {
        catchUpContinuation.yield()
    }

    func finishCatchUp() {
        catchUpContinuation.finish()
    }

    func countEmit(malformed: Bool) {
        state.withLock { state in
            if malformed { state.emitMalformed += 1 } else { state.emitReceived += 1 }
        }
    }

    func markSubscribed(status: Bool? = nil, emit: Bool? = nil) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if let status { state.statusSubscribed = status }
            if let emit { state.emitSubscribed = emit }
            guard state.isReady else { return [] }
            defer { state.readyWaiters = [] }
            return state.readyWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
