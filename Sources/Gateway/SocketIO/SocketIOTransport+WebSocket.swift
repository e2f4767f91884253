import Broker
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

extension SocketIOTransport {
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

    /// One WebSocket: a new Engine.IO session (`transports: ["websocket"]`) or the upgrade of a
    /// polling one. Feeds the session the client's frames; what the session queues is written from
    /// the channel's event loop (``EngineIOFramePusher``), so this is the connection's one task.
    func serveWebSocket(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        context: WebSocketRouterContext<GatewayRequestContext>
    ) async {
        let request = context.request
        let channel = context.requestContext.channel
        let linkID = table.makeLinkID()
        let attached = AttachedConnection()
        let maxPayload = configuration.engine.maxPayload
        // The gateway's watchdog pings the WebSocket and drops a client whose writes stay blocked.
        let progress = gateway.watchdog.watch(session: nil, channel: channel, label: "socket.io", pings: true)
        defer { gateway.watchdog.unwatch(progress) }
        let pusher: (send: @Sendable (EngineIOFrame) -> Void, finish: @Sendable () -> Void, link: EngineIOFramePusher.Link)
        do {
            pusher = try await EngineIOFramePusher.install(
                on: channel, progress: progress, written: { attached.connection?.wrote(on: linkID) })
        } catch {
            logger.debug("socket.io websocket not served", metadata: ["error": "\(error)"])
            return
        }
        let link = WebSocketLink(id: linkID, send: pusher.send, finish: pusher.finish, channel: channel)
        let connection: EngineIOConnection
        if let sid = request.uri.queryParameters["sid"].map(String.init), !sid.isEmpty {
            // An upgrade: the session may have ended since the check, or be upgrading already.
            guard let existing = table.connection(sid), existing.attach(link) else { return }
            connection = existing
        } else {
            guard isAccepting else { return }
            connection = EngineIOConnection(
                sid: EngineIOSession.makeSessionID(), transport: .webSocket, handshakeToken: request.presentedToken,
                configuration: configuration, webSocket: link, now: .now)
            guard table.insert(connection) else { return }
        }
        attached.connection = connection
        do {
            for try await message in inbound.messages(maxSize: maxPayload) {
                // The session is done with this WebSocket: the pusher woke us to close it.
                if pusher.link.isFinished { break }
                let frame: EngineIOFrame =
                    switch message {
                    case .text(let text): .text(Array(text.utf8))
                    case .binary(let buffer): .binary(Array(buffer.readableBytesView))
                    }
                let effects = connection.webSocketFrame(frame, from: link.id)
                // Effects (CONNECT's token check and replay, client events) reach deep into the
                // broker: in a child, so that this long-lived task stays shallow.
                if !effects.isEmpty { await transiently { [self] in await perform(effects, on: connection) } }
            }
        } catch {
            logger.debug("socket.io websocket ended", metadata: ["sid": "\(connection.sid)", "error": "\(error)"])
        }
        pusher.finish()
        await perform(connection.webSocketClosed(link.id), on: connection)
    }

    /// Runs `work` in a child task that ends with it, so that the stack it grows is freed.
    private func transiently(_ work: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask(operation: work)
        }
    }
}

/// The Engine.IO session a WebSocket serves, once known (frames written before it is are the
/// opening packet, which the session does not count).
private final class AttachedConnection: Sendable {
    private let value = Mutex<EngineIOConnection?>(nil)

    var connection: EngineIOConnection? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
