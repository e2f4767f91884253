import Broker
import Hummingbird
import Logging
import NIOCore
import NIOWebSocket

extension SocketIOTransport {
    /// The WebSocket endpoint at `/socket.io/`: a new Engine.IO session
    /// (`transports: ["websocket"]`) or the upgrade of a polling one.
    var webSocketEndpoint: WebSocketEndpoint {
        WebSocketEndpoint(path: "/socket.io") { [self] request, _ in
            try checkUpgrade(request)
            let sid = request.uri.queryParameters["sid"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let token = request.presentedToken
            return WebSocketAcceptance(label: "socket.io", maxMessageSize: configuration.engine.maxPayload) {
                SocketIOWebSocketService(transport: self, sid: sid, handshakeToken: token)
            }
        }
    }

    /// Checked before the upgrade, without touching any session: the request must be a valid
    /// Engine.IO WebSocket request, and name a session of this node if it names one.
    func checkUpgrade(_ request: Request) throws {
        let target: EngineIORequest
        do {
            target = try classify(request, method: .get, isWebSocketUpgrade: true)
        } catch {
            throw GatewayError(.init(code: error.httpStatus), error.message)
        }
        switch target {
        case .handshake(.webSocket):
            return
        case .upgrade(let sid):
            guard table.connection(sid) != nil else {
                throw GatewayError.badRequest(EngineIOHTTPError.sessionIDUnknown.message)
            }
        case .handshake(.polling), .poll, .post:
            throw GatewayError.badRequest(EngineIOHTTPError.badRequest.message)
        }
    }
}

/// One Socket.IO WebSocket: feeds its Engine.IO session the client's frames, in order, and
/// writes what the session hands its link from the channel's event loop. Each written frame is
/// reported (``EngineIOConnection/wrote(on:)``) so that the session's in-flight count, and with
/// it the event pump, goes on. While frames wait on a channel that is not writable, the write
/// counts as blocked for the ``ConnectionWatchdog``, which drops the connection after the stall
/// timeout.
final class SocketIOWebSocketService: WebSocketService {
    private let transport: SocketIOTransport
    private let sid: String?
    private let handshakeToken: String?
    private let linkID: UInt64
    private var connection: EngineIOConnection?
    /// Frames written and not yet taken by the channel.
    private var pending = 0

    init(transport: SocketIOTransport, sid: String?, handshakeToken: String?) {
        self.transport = transport
        self.sid = sid
        self.handshakeToken = handshakeToken
        self.linkID = transport.table.makeLinkID()
    }

    func opened(_ socket: WebSocketConnection) -> WebSocketWork? {
        let handle = socket.handle
        let link = WebSocketLink(
            id: linkID,
            send: { frame in handle.onEventLoop { $0.service(as: SocketIOWebSocketService.self)?.write(frame, on: $0) } },
            finish: { handle.onEventLoop { $0.close(.normalClosure) } },
            channel: socket.channel)
        if let sid {
            // An upgrade: the session may have ended since the check, or be upgrading already.
            guard let existing = transport.table.connection(sid), existing.attach(link) else {
                socket.close(.policyViolation, reason: "session not upgradable")
                return nil
            }
            connection = existing
        } else {
            guard transport.isAccepting else {
                socket.close(.goingAway, reason: "server shutting down")
                return nil
            }
            let created = EngineIOConnection(
                sid: EngineIOSession.makeSessionID(), transport: .webSocket, handshakeToken: handshakeToken,
                configuration: transport.configuration, webSocket: link, now: .now)
            guard transport.table.insert(created) else {
                socket.close(.unexpectedServerError)
                return nil
            }
            connection = created
        }
        return nil
    }

    private func write(_ frame: EngineIOFrame, on socket: WebSocketConnection) {
        guard socket.isOpen else { return }
        let promise = socket.eventLoop.makePromise(of: Void.self)
        pending += 1
        let (connection, linkID) = (self.connection, self.linkID)
        // Completed on the event loop, where this service and its connection live.
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            if case .success = result { connection?.wrote(on: linkID) }
            pending -= 1
            noteProgress(socket)
        }
        switch frame {
        case .text(let bytes): socket.write(bytes: bytes, binary: false, promise: promise)
        case .binary(let bytes): socket.write(bytes: bytes, binary: true, promise: promise)
        }
        socket.flush()
        noteProgress(socket)
    }

    private func noteProgress(_ socket: WebSocketConnection) {
        socket.progress.noteBlocked(pending > 0 && !socket.isWritable)
    }

    func received(_ message: WebSocketMessage, on socket: WebSocketConnection) -> WebSocketWork? {
        guard let connection else { return nil }
        let frame: EngineIOFrame =
            switch message {
            case .text(let buffer): .text(Array(buffer.readableBytesView))
            case .binary(let buffer): .binary(Array(buffer.readableBytesView))
            }
        let effects = connection.webSocketFrame(frame, from: linkID)
        guard !effects.isEmpty else { return nil }
        // CONNECT's token check and replay, client events: in order, before the next frame.
        return { [transport] in await transport.perform(effects, on: connection) }
    }

    func writabilityChanged(on socket: WebSocketConnection) {
        noteProgress(socket)
    }

    func shutdown(_ socket: WebSocketConnection) {
        socket.close(.goingAway, reason: "server shutting down")
    }

    func closed(_ socket: WebSocketConnection) {
        guard let connection else { return }
        self.connection = nil
        let effects = connection.webSocketClosed(linkID)
        guard !effects.isEmpty else { return }
        if !socket.spawn({ [transport] in await transport.perform(effects, on: connection) }) {
            transport.logger.debug("socket.io websocket closed after shutdown", metadata: ["sid": "\(connection.sid)"])
        }
    }
}
