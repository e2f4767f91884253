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
        let progress = ConnectionWatchdog.Progress()
        let maxPayload = configuration.engine.maxPayload
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
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
                        return
                    }
                    connection.wrote(on: link.id)
                }
            }
            group.addTask { [self] in
                do {
                    for try await message in inbound.messages(maxSize: maxPayload) {
                        let frame: EngineIOFrame =
                            switch message {
                            case .text(let text): .text(Array(text.utf8))
                            case .binary(let buffer): .binary(Array(buffer.readableBytesView))
                            }
                        let effects = connection.webSocketFrame(frame, from: link.id)
                        if !effects.isEmpty { await perform(effects, on: connection) }
                    }
                } catch {
                    logger.debug(
                        "socket.io websocket ended", metadata: ["sid": "\(connection.sid)", "error": "\(error)"])
                }
            }
            group.addTask { [self] in
                // A client that stops reading blocks a write forever: drop it after the stall timeout.
                let interval = gateway.configuration.watchdogInterval
                let stallTimeout = gateway.configuration.writeStallTimeout
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: interval)
                    } catch {
                        return
                    }
                    if let since = progress.blockedSince, since.duration(to: .now) > stallTimeout {
                        logger.warning(
                            "socket.io client stopped reading: connection dropped",
                            metadata: ["sid": "\(connection.sid)"])
                        channel.close(promise: nil)
                        return
                    }
                }
            }
            // Whichever ends first (the session closed the link, the client left) ends the socket.
            await group.next()
            group.cancelAll()
        }
        continuation.finish()
        await perform(connection.webSocketClosed(link.id), on: connection)
    }
}
