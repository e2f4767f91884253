import Broker
import Logging
import NIOCore

extension SocketIOTransport {
    /// Runs what a connection's input left to do, in order.
    func perform(_ effects: [ConnectionEffect], on connection: EngineIOConnection) async {
        for effect in effects {
            switch effect {
            case .authenticate(let request):
                await connect(request, on: connection)
            case .event(let event, let ackID):
                await handle(event, ackID: ackID, on: connection)
            case .leftNamespace(let session):
                session.close()
            case .ended(let reason, let session):
                table.remove(connection)
                session?.close()
                logger.debug("engine.io session closed", metadata: ["sid": "\(connection.sid)", "reason": "\(reason)"])
            }
        }
    }

    /// CONNECT: the token from the auth payload, else from the handshake request; then the
    /// router session (replaying after `auth.lastEventId`), `40{"sid":...}`, and the event pump.
    private func connect(_ request: SocketIOConnectRequest, on connection: EngineIOConnection) async {
        let userId: String
        do {
            userId = try await gateway.authenticate(request.token ?? connection.handshakeToken)
        } catch {
            await refuse(connection, message: (error as? GatewayError)?.message ?? "unauthorized")
            return
        }
        let session: Session
        do {
            session = try await gateway.router.connect(
                userId: userId, lastEventId: request.lastEventId, transport: "socket.io",
                capacity: gateway.configuration.outboundQueueCapacity)
        } catch {
            gateway.logThrottle.log("backend", .warning, "socket.io connect failed", metadata: ["error": "\(error)"], to: logger)
            await refuse(connection, message: "backend unavailable")
            return
        }
        let (accepted, effects) = connection.connectAccepted(
            socketID: EngineIOSession.makeSessionID(), session: session)
        guard accepted else {
            // The client left (or the session closed) while we checked.
            session.close()
            await perform(effects, on: connection)
            return
        }
        guard isAccepting else {
            session.close()
            await perform(effects + connection.close(disconnect: true), on: connection)
            return
        }
        gateway.metrics.connectionOpened(.socketio)
        await perform(effects, on: connection)
        if let notice = session.ignoredLastEventIdNotice {
            await send(SocketIOPacket.encodeEvent(name: "error", data: ["message": .string(notice)]), on: connection)
        }
        SocketIOEventPump(session: session, connection: connection, transport: self).start()
    }

    private func refuse(_ connection: EngineIOConnection, message: String) async {
        await perform(connection.connectRejected(message: message), on: connection)
    }

    /// A client event (SPEC §3.1): rooms, chat, ping. Answered with an ACK when the client asked
    /// for one (`{"ok":true,...}` or `{"ok":false,"error":...}`), else refusals come as event `error`.
    private func handle(_ event: ClientEvent, ackID: Int?, on connection: EngineIOConnection) async {
        guard let session = connection.session else { return }
        let outcome: Result<[String: JSONValue], Refusal>
        switch event {
        case .joinRoom(let room):
            do {
                try session.join(room)
                outcome = .success(["room": .string(room)])
            } catch {
                outcome = .failure(Refusal(error.description))
            }
        case .leaveRoom(let room):
            outcome = session.leave(room) ? .success(["room": .string(room)]) : .failure(Refusal("not in room \(room)"))
        case .chatMessage(let roomId, let message):
            outcome = await chat(message, to: roomId, from: session.userId)
        case .ping:
            let pong: [String: JSONValue] = ["timestamp": .integer(Timestamp.now().milliseconds)]
            await send(SocketIOPacket.encodeEvent(name: ClientEvent.Name.pong, data: .object(pong)), on: connection)
            outcome = .success(pong)
        case .malformed(let name, let reason):
            gateway.metrics.malformedFrame()
            outcome = .failure(Refusal("\(name): \(reason)"))
        case .other(let name, _, _):
            // Unknown events are ignored, unless the client waits for an answer.
            guard ackID != nil else { return }
            outcome = .failure(Refusal("unknown event \(name)"))
        }
        switch (outcome, ackID) {
        case (.success(var members), let ackID?):
            members["ok"] = .bool(true)
            await send(SocketIOPacket.encodeAck(id: ackID, arguments: [.object(members)]), on: connection)
        case (.failure(let refusal), let ackID?):
            let answer: JSONValue = ["ok": .bool(false), "error": .string(refusal.message)]
            await send(SocketIOPacket.encodeAck(id: ackID, arguments: [answer]), on: connection)
        case (.failure(let refusal), nil):
            let data: JSONValue = ["message": .string(refusal.message)]
            await send(SocketIOPacket.encodeEvent(name: "error", data: data), on: connection)
        case (.success, nil):
            break
        }
    }

    /// Broadcasts `chat-message` `{roomId, message, userId, timestamp}` to the room on every
    /// node (through the router's emit channel), if the room policy admits the room.
    private func chat(_ message: JSONValue, to roomId: String, from userId: String) async
        -> Result<[String: JSONValue], Refusal>
    {
        if let refusal = gateway.router.registry.policy.refusal(for: roomId) {
            return .failure(Refusal(refusal.description))
        }
        let data: JSONValue = [
            "roomId": .string(roomId), "message": message, "userId": .string(userId),
            "timestamp": .string(Timestamp.now().iso8601),
        ]
        do {
            try await gateway.router.emit(ClientEvent.Name.chatMessage, data: data, toRoom: roomId)
            return .success(["roomId": .string(roomId)])
        } catch {
            gateway.logThrottle.log("backend", .warning, "chat-message not sent", metadata: ["error": "\(error)"], to: logger)
            return .failure(Refusal("backend unavailable"))
        }
    }

    private func send(_ text: [UInt8], on connection: EngineIOConnection) async {
        let effects = connection.send(.text(text))
        if !effects.isEmpty { await perform(effects, on: connection) }
    }

    struct Refusal: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }
}
