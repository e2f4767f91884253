import Broker
import NIOCore
import Synchronization

/// One Engine.IO session of this node (one `sid`): the two protocol state machines, the held
/// polling GET, the attached WebSocket and, once the namespace is connected, the job router's
/// ``Session``, all behind one lock.
///
/// Every input runs the state machines under the lock and performs what can be done there
/// (answering the held poll, queueing frames for the WebSocket writer, in protocol order);
/// what needs to wait (authentication, client events, cleanup) comes back as
/// ``ConnectionEffect`` values for ``SocketIOTransport`` to run, in order, outside the lock.
final class EngineIOConnection: Sendable {
    struct State: Sendable {
        var engine: EngineIOSession
        var socket: SocketIOSession
        /// The GET the session told us to hold.
        var heldPoll: CheckedContinuation<PollAnswer, Never>?
        /// The probe WebSocket during an upgrade, then the session's WebSocket.
        var webSocket: WebSocketLink?
        /// Frames given to `webSocket`'s writer and not written yet.
        var inFlight = 0
        /// The router session, from CONNECT accepted until the namespace or the session ends.
        var session: Session?
        var ended = false
        /// The event pump's wake-up, once the client took frames (see ``whenSpace(_:)``).
        var spaceWaiter: (@Sendable () -> Void)?

        func isBackedUp(limit: Int) -> Bool {
            guard !ended else { return false }
            if engine.transport == .webSocket { return inFlight >= limit }
            return engine.bufferedFrameCount >= limit
        }

        /// Wakes the pump when there is space again, or for good once the session ended.
        mutating func wakeIfSpace(limit: Int, force: Bool = false) {
            guard let waiter = spaceWaiter, force || !isBackedUp(limit: limit) else { return }
            spaceWaiter = nil
            waiter()
        }
    }

    let sid: String
    /// The token of the handshake request (`?token=` or `Authorization`), used when CONNECT has none.
    let handshakeToken: String?
    /// How many frames may wait for the client before the event pump waits.
    let maxInFlight: Int
    private let state: Mutex<State>

    init(
        sid: String, transport: EngineIOSession.Transport, handshakeToken: String?,
        configuration: SocketIOConfiguration, webSocket: WebSocketLink?, now: ContinuousClock.Instant
    ) {
        self.sid = sid
        self.handshakeToken = handshakeToken
        self.maxInFlight = configuration.maxInFlightFrames
        let engine = EngineIOSession(sid: sid, transport: transport, configuration: configuration.engine, now: now)
        var initial = State(
            engine: engine, socket: SocketIOSession(connectDeadline: now + configuration.connectTimeout))
        if let webSocket {
            initial.webSocket = webSocket
            webSocket.send(engine.openingFrame)
        }
        self.state = Mutex(initial)
    }

    /// The open packet (the body of the polling handshake).
    var openingFrame: EngineIOFrame { state.withLock { $0.engine.openingFrame } }

    var isEnded: Bool { state.withLock { $0.ended } }

    /// Whether the client has `maxInFlight` frames or more waiting: the pump waits for space.
    var isBackedUp: Bool { state.withLock { $0.isBackedUp(limit: maxInFlight) } }

    /// The router session while the namespace is connected.
    var session: Session? { state.withLock { $0.session } }

    /// Calls `wake` once the client has taken frames (or the session ended, or its router
    /// session closed): now, if it has space already. `wake` may run inside this connection's
    /// lock, so it must only schedule the pump, not touch the connection. One waiter at a time.
    func whenSpace(_ wake: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if !state.isBackedUp(limit: maxInFlight) || state.session?.isClosed == true { return true }
            state.spaceWaiter = wake
            return false
        }
        if now { wake() }
    }

    // MARK: Inputs

    /// A polling GET: answered now, or held until there is something to send.
    func poll() async -> (PollAnswer, [ConnectionEffect]) {
        var effects: [ConnectionEffect] = []
        let answer = await withCheckedContinuation { (continuation: CheckedContinuation<PollAnswer, Never>) in
            state.withLock { state in
                let actions = state.engine.pollRequestArrived()
                let outcome = state.perform(actions, now: .now, effects: &effects)
                switch outcome {
                case .hold: state.heldPoll = continuation
                case .respond(let body): continuation.resume(returning: .body(body))
                case .reject(let error): continuation.resume(returning: .error(error))
                case .acceptWebSocket, nil: continuation.resume(returning: .error(.badRequest))
                }
            }
        }
        state.withLock { $0.wakeIfSpace(limit: maxInFlight) }
        return (answer, effects)
    }

    /// A polling POST with its whole body.
    func post(_ body: [UInt8]) -> (PollAnswer, [ConnectionEffect]) {
        var effects: [ConnectionEffect] = []
        let outcome = state.withLock { state in
            let actions = state.engine.postArrived(body: body, now: .now)
            return state.perform(actions, now: .now, effects: &effects)
        }
        switch outcome {
        case .respond(let body): return (.body(body), effects)
        case .reject(let error): return (.error(error), effects)
        case .hold, .acceptWebSocket, nil: return (.error(.badRequest), effects)
        }
    }

    /// A WebSocket for this polling session (an upgrade probe); `false` if refused.
    func attach(_ link: WebSocketLink) -> Bool {
        state.withLock { state in
            var effects: [ConnectionEffect] = []
            // Only `acceptWebSocket` or `reject` come back here: no effects to run.
            let actions = state.engine.webSocketOpened(now: .now)
            guard state.perform(actions, now: .now, effects: &effects) == .acceptWebSocket else { return false }
            state.webSocket?.finish()
            state.webSocket = link
            state.inFlight = 0
            return true
        }
    }

    /// A frame from the WebSocket `linkID` (ignored if it is no longer this session's).
    func webSocketFrame(_ frame: EngineIOFrame, from linkID: UInt64) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in
            guard state.webSocket?.id == linkID else { return }
            let actions = state.engine.webSocketFrameArrived(frame, now: .now)
            _ = state.perform(actions, now: .now, effects: &effects)
        }
        return effects
    }

    /// The WebSocket `linkID` closed.
    func webSocketClosed(_ linkID: UInt64) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in
            guard state.webSocket?.id == linkID else { return }
            state.webSocket = nil
            state.inFlight = 0
            let actions = state.engine.webSocketClosed()
            _ = state.perform(actions, now: .now, effects: &effects)
            state.wakeIfSpace(limit: maxInFlight)
        }
        return effects
    }

    /// The writer of `linkID` wrote one frame.
    func wrote(on linkID: UInt64) {
        state.withLock { state in
            guard state.webSocket?.id == linkID, state.inFlight > 0 else { return }
            state.inFlight -= 1
            state.wakeIfSpace(limit: maxInFlight)
        }
    }

    /// Heartbeats, ping timeout, upgrade timeout, connect timeout, when due.
    func timerFired(now: ContinuousClock.Instant) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in
            if let deadline = state.engine.nextDeadline, now >= deadline {
                let actions = state.engine.timerFired(now: now)
                _ = state.perform(actions, now: now, effects: &effects)
            }
            if let deadline = state.socket.connectDeadline, now >= deadline {
                let action = state.socket.timerFired(now: now)
                state.handle(action, now: now, effects: &effects)
            }
            // A router session closed as a slow consumer while the pump waited for space.
            if state.session?.isClosed == true { state.wakeIfSpace(limit: maxInFlight, force: true) }
        }
        return effects
    }

    /// Sends a frame (an event, an ACK, a CONNECT answer) to the client.
    func send(_ frame: EngineIOFrame) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in state.send(frame, now: .now, effects: &effects) }
        return effects
    }

    /// The CONNECT was accepted: sends `40{"sid":...}` and keeps `session`; `false` (and
    /// nothing sent) if the client is no longer waiting for that answer.
    func connectAccepted(socketID: String, session: Session) -> (Bool, [ConnectionEffect]) {
        var effects: [ConnectionEffect] = []
        let accepted = state.withLock { state in
            guard !state.ended, let frame = state.socket.connectAccepted(sid: socketID) else { return false }
            state.session = session
            state.send(frame, now: .now, effects: &effects)
            return true
        }
        return (accepted, effects)
    }

    /// The CONNECT was refused: sends `44{"message":...}`.
    func connectRejected(message: String) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in
            if let frame = state.socket.connectRejected(message: message) {
                state.send(frame, now: .now, effects: &effects)
            }
        }
        return effects
    }

    /// Ends the session from the server: `41` first when `disconnect` and the namespace is
    /// connected, then the Engine.IO close.
    func close(disconnect: Bool) -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { state in
            if disconnect, let frame = state.socket.disconnect() {
                if let session = state.session {
                    state.session = nil
                    effects.append(.leftNamespace(session))
                }
                state.send(frame, now: .now, effects: &effects)
            }
            let actions = state.engine.close(now: .now)
            _ = state.perform(actions, now: .now, effects: &effects)
        }
        return effects
    }

    /// Ends the session so that the client reconnects (see `State.drop`): for a deploy's
    /// shutdown and a slow consumer, neither of which should keep the client away.
    func drop() -> [ConnectionEffect] {
        var effects: [ConnectionEffect] = []
        state.withLock { $0.drop(effects: &effects) }
        return effects
    }

    /// The channel of the session's WebSocket, to drop a client that stopped reading.
    var webSocketChannel: (any Channel)? { state.withLock { $0.webSocket?.channel } }
}
