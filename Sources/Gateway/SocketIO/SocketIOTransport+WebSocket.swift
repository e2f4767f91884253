import Broker
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

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
    /// polling one. Writes what the session queues, in order; feeds it the client's frames.
    func serveWebSocket(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        context: WebSocketRouterContext<GatewayRequestContext>
    ) async {
        let request = context.request
        let channel = context.requestContext.channel
        let (frames, continuation) = AsyncStream.makeStream(of: EngineIOFrame.self)
        let link = WebSocketLink(id: table.makeLinkID(), frames: continuation, channel: channel)
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
        let maxPayload = configuration.engine.maxPayload
        // Two tasks per connection, not more: this one writes what the session queues, a child
        // reads; the gateway's watchdog drops a client whose write stays blocked (it stopped
        // reading). Either side's end ends the other: the writer cancels the reader, the reader
        // finishes the frame stream.
        await gateway.watchdog.watching(session: nil, channel: channel, label: "socket.io", pings: true) { progress in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    defer { continuation.finish() }
                    do {
                        for try await message in inbound.messages(maxSize: maxPayload) {
                            let frame: EngineIOFrame =
                                switch message {
                                case .text(let text): .text(Array(text.utf8))
                                case .binary(let buffer): .binary(Array(buffer.readableBytesView))
                                }
                            let effects = connection.webSocketFrame(frame, from: link.id)
                            // Effects (CONNECT's token check and replay, client events) reach deep
                            // into the broker: in a child, so that this long-lived task stays shallow.
                            if !effects.isEmpty { await transiently { [self] in await perform(effects, on: connection) } }
                        }
                    } catch {
                        logger.debug(
                            "socket.io websocket ended", metadata: ["sid": "\(connection.sid)", "error": "\(error)"])
                    }
                }
                for await frame in frames {
                    let opcode: WebSocketOpcode
                    switch frame {
                    case .text: opcode = .text
                    case .binary: opcode = .binary
                    }
                    let data = ByteBuffer(bytes: frame.bytes)
                    do {
                        try await progress.writing {
                            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: opcode, data: data)))
                        }
                    } catch {
                        break
                    }
                    connection.wrote(on: link.id)
                }
                // The session closed the link, or the client left (the reader finished the stream).
                group.cancelAll()
            }
        }
        continuation.finish()
        await perform(connection.webSocketClosed(link.id), on: connection)
    }

    /// Runs `work` in a child task that ends with it, so that the stack it grows is freed.
    private func transiently(_ work: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask(operation: work)
        }
    }
}
