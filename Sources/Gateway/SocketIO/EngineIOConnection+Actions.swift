import Broker
import NIOCore

/// A WebSocket attached to an Engine.IO session: the probe during an upgrade, then the
/// session's transport. Frames given to `send` are written in order (see ``SocketIOWebSocketService``);
/// `finish` ends the WebSocket once they are.
struct WebSocketLink: Sendable {
    let id: UInt64
    let send: @Sendable (EngineIOFrame) -> Void
    let finish: @Sendable () -> Void
    let channel: any Channel
}

/// What a polling request is answered with.
enum PollAnswer: Sendable, Equatable {
    /// 200, `text/plain`, this body.
    case body([UInt8])
    /// The Engine.IO error status and body.
    case error(EngineIOHTTPError)
}

/// Work the transport does outside the connection's lock, in order.
enum ConnectionEffect: Sendable {
    /// Check the CONNECT's credentials, then `connectAccepted` or `connectRejected`.
    case authenticate(SocketIOConnectRequest)
    /// The client emitted an event (ACK it when `ackID` is set).
    case event(ClientEvent, ackID: Int?)
    /// The namespace connection ended: close the router session.
    case leftNamespace(Session)
    /// The Engine.IO session ended: forget the sid, close the router session.
    case ended(EngineIOSession.CloseReason, Session?)
}

/// The answer to the request an input was about.
enum RequestOutcome: Sendable, Equatable {
    case respond([UInt8])
    case hold
    case reject(EngineIOHTTPError)
    case acceptWebSocket
}

extension EngineIOConnection.State {
    /// Performs the Engine.IO session's actions in order; returns the answer to the request the
    /// input was about, if any.
    mutating func perform(
        _ actions: [EngineIOSession.Action], now: ContinuousClock.Instant, effects: inout [ConnectionEffect]
    ) -> RequestOutcome? {
        var outcome: RequestOutcome?
        for action in actions {
            switch action {
            case .respond(let body): outcome = .respond(body)
            case .hold: outcome = .hold
            case .reject(let error): outcome = .reject(error)
            case .acceptWebSocket: outcome = .acceptWebSocket
            case .answerHeldPoll(let body): answerHeldPoll(.body(body))
            case .sendOnWebSocket(let frame): sendOnWebSocket(frame)
            case .deliver(let message):
                guard !ended else { continue }
                let next = socket.receive(message)
                handle(next, now: now, effects: &effects)
            case .upgraded:
                break
            case .closeProbeWebSocket:
                webSocket?.finish()
                webSocket = nil
                inFlight = 0
            case .closed(let reason):
                end(reason, effects: &effects)
            }
        }
        return outcome
    }

    /// Performs what the Socket.IO session asks after a message.
    mutating func handle(
        _ action: SocketIOSession.Action, now: ContinuousClock.Instant, effects: inout [ConnectionEffect]
    ) {
        switch action {
        case .none, .acknowledgement:
            break
        case .send(let frame):
            send(frame, now: now, effects: &effects)
        case .authenticate(let request):
            effects.append(.authenticate(request))
        case .event(let event, let ackID):
            effects.append(.event(event, ackID: ackID))
        case .disconnected:
            if let session {
                self.session = nil
                effects.append(.leftNamespace(session))
            }
        case .close:
            let actions = engine.close(now: now)
            _ = perform(actions, now: now, effects: &effects)
        }
    }

    /// Hands one frame to the Engine.IO session.
    mutating func send(_ frame: EngineIOFrame, now: ContinuousClock.Instant, effects: inout [ConnectionEffect]) {
        let action = engine.send(frame)
        switch action {
        case .sendOnWebSocket(let frame): sendOnWebSocket(frame)
        case .answerHeldPoll(let body): answerHeldPoll(.body(body))
        case .buffered, .discarded: break
        case .close(let actions): _ = perform(actions, now: now, effects: &effects)
        }
    }

    private mutating func sendOnWebSocket(_ frame: EngineIOFrame) {
        guard let webSocket else { return }
        webSocket.send(frame)
        inFlight += 1
    }

    private mutating func answerHeldPoll(_ answer: PollAnswer) {
        heldPoll?.resume(returning: answer)
        heldPoll = nil
    }

    /// Ends the session without telling the client it ended: a held poll fails (the session
    /// is unknown from now on, as it will be to the next server) and the WebSocket closes.
    /// Clients take that as a lost transport and reconnect. The Engine.IO close packet would
    /// keep python-socketio away (it reads it as the server's wish), and DISCONNECT (`41`)
    /// every client.
    mutating func drop(effects: inout [ConnectionEffect]) {
        answerHeldPoll(.error(.sessionIDUnknown))
        end(.serverClosed, effects: &effects)
    }

    /// The session is over: release everything it holds.
    private mutating func end(_ reason: EngineIOSession.CloseReason, effects: inout [ConnectionEffect]) {
        guard !ended else { return }
        ended = true
        socket.transportClosed()
        // The session answers a held poll before closing; never leave a request hanging anyway.
        answerHeldPoll(.body(EngineIOPayload.encode(CollectionOfOne(EngineIOFrame.close))))
        webSocket?.finish()
        webSocket = nil
        inFlight = 0
        effects.append(.ended(reason, session))
        session = nil
        let waiter = spaceWaiter
        spaceWaiter = nil
        waiter?()
    }
}
