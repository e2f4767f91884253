import Testing

@testable import Broker

extension SocketIOTests {
    /// The glue a gateway writes around the two state machines, minus the I/O: it performs the
    /// actions and records what would go on the wire, so a whole client session can be replayed.
    struct SimulatedGateway {
        var engine: EngineIOSession
        var socket = SocketIOSession()
        /// Bodies of answered GETs (immediate or held), in order.
        var pollBodies: [String] = []
        /// Frames sent on the WebSocket, in order (binary shown as `<binary n bytes>`).
        var webSocketFrames: [String] = []
        /// Client events seen by the gateway, with their ack ids.
        var events: [(ClientEvent, Int?)] = []
        var holding = false
        var upgraded = false
        var closed: EngineIOSession.CloseReason?
        /// How to answer a CONNECT: accept with this sid, or refuse with the message.
        var authenticate: (SocketIOConnectRequest) -> Result<String, AuthError> = { _ in .success("sio-sid") }

        struct AuthError: Error { var message: String }

        init(transport: EngineIOSession.Transport, configuration: EngineIOConfiguration = .init()) {
            engine = EngineIOSession(
                sid: "lv_VI97HAXpY6yYWAAAC", transport: transport, configuration: configuration, now: start)
            let opening = text(engine.openingFrame.bytes)
            if transport == .polling { pollBodies.append(opening) } else { webSocketFrames.append(opening) }
        }

        mutating func get() -> [EngineIOSession.Action] { run(engine.pollRequestArrived()) }
        mutating func post(_ body: String, at time: Double) -> [EngineIOSession.Action] {
            run(engine.postArrived(body: bytes(body), now: at(time)))
        }
        mutating func openWebSocket(at time: Double) -> [EngineIOSession.Action] {
            run(engine.webSocketOpened(now: at(time)))
        }
        mutating func frame(_ frame: String, at time: Double) -> [EngineIOSession.Action] {
            run(engine.webSocketFrameArrived(.text(bytes(frame)), now: at(time)))
        }
        mutating func timer(at time: Double) -> [EngineIOSession.Action] { run(engine.timerFired(now: at(time))) }

        /// The gateway's emit path: encode once, hand the bytes to the session.
        mutating func emit(_ frame: EngineIOFrame) {
            switch engine.send(frame) {
            case .sendOnWebSocket(let frame): record(frame)
            case .answerHeldPoll(let body): answerHeld(body)
            case .buffered, .discarded: break
            case .close(let actions): _ = run(actions)
            }
        }

        @discardableResult
        mutating func run(_ actions: [EngineIOSession.Action]) -> [EngineIOSession.Action] {
            for action in actions {
                switch action {
                case .respond(let body):
                    if body != EngineIOSession.postAcknowledgement { pollBodies.append(text(body)) }
                case .hold: holding = true
                case .reject: break
                case .acceptWebSocket: break
                case .answerHeldPoll(let body): answerHeld(body)
                case .sendOnWebSocket(let frame): record(frame)
                case .deliver(let message): handle(socket.receive(message))
                case .upgraded: upgraded = true
                case .closeProbeWebSocket: break
                case .closed(let reason):
                    closed = reason
                    socket.transportClosed()
                }
            }
            return actions
        }

        private mutating func handle(_ action: SocketIOSession.Action) {
            switch action {
            case .none, .disconnected, .acknowledgement: break
            case .send(let frame): emit(frame)
            case .authenticate(let request):
                switch authenticate(request) {
                case .success(let sid): if let frame = socket.connectAccepted(sid: sid) { emit(frame) }
                case .failure(let error): if let frame = socket.connectRejected(message: error.message) { emit(frame) }
                }
            case .event(let event, let ackID):
                events.append((event, ackID))
                if event == .ping {
                    emit(.text(SocketIOPacket.encodeEvent(name: ClientEvent.Name.pong, arguments: [])))
                }
            case .close:
                _ = run(engine.close(now: at(0)))
            }
        }

        private mutating func answerHeld(_ body: [UInt8]) {
            #expect(holding, "answered a poll that was not held")
            holding = false
            pollBodies.append(text(body))
        }

        private mutating func record(_ frame: EngineIOFrame) {
            switch frame {
            case .text(let bytes): webSocketFrames.append(text(bytes))
            case .binary(let bytes): webSocketFrames.append("<binary \(bytes.count) bytes>")
            }
        }
    }

    @Suite("Replayed client sessions")
    struct TranscriptTests {
        /// The socket.io-protocol document's sample session, polling then WebSocket, as our server
        /// answers it (only the default namespace exists, so `/admin` gets a CONNECT_ERROR and the
        /// acknowledged event is sent on `/`).
        @Test func protocolDocumentSampleSession() {
            var gateway = SimulatedGateway(transport: .polling, configuration: .init(pingTimeout: .seconds(5)))
            #expect(
                gateway.pollBodies == [
                    #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#
                ])
            gateway.authenticate = { _ in .success("wZX3oN0bSVIhsaknAAAI") }

            // Request 2: namespace connection request. Request 3: its approval.
            #expect(gateway.post("40", at: 0.1).first == .respond(bytes("ok")))
            #expect(gateway.get() == [.respond(bytes(#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#))])
            #expect(gateway.socket.isConnected)

            // Request 4: socket.emit('hey', 'Jude') on the server, answering a held poll.
            #expect(gateway.get() == [.hold])
            gateway.emit(.text(SocketIOPacket.encodeEvent(name: "hey", arguments: ["Jude"])))
            #expect(gateway.pollBodies.last == #"42["hey","Jude"]"#)

            // Request 5: two events in one POST.
            _ = gateway.post("42[\"hello\"]\u{1e}42[\"world\"]", at: 1)
            #expect(
                gateway.events.map(\.0) == [
                    .other(name: "hello", arguments: [], attachments: []),
                    .other(name: "world", arguments: [], attachments: []),
                ])

            // Request 6: the WebSocket upgrade, with a poll held across it.
            #expect(gateway.get() == [.hold])
            #expect(gateway.openWebSocket(at: 2) == [.acceptWebSocket])
            _ = gateway.frame("2probe", at: 2)
            #expect(gateway.webSocketFrames == ["3probe"])
            #expect(gateway.pollBodies.last == "6")
            _ = gateway.frame("5", at: 2.1)
            #expect(gateway.upgraded)
            #expect(gateway.engine.transport == .webSocket)

            _ = gateway.frame(#"42["hello"]"#, at: 3)
            _ = gateway.frame(#"42["world"]"#, at: 3)
            #expect(gateway.events.count == 4)

            // The admin namespace does not exist here.
            _ = gateway.frame("40/admin,", at: 4)
            #expect(gateway.webSocketFrames.last == #"44/admin,{"message":"Invalid namespace"}"#)

            // An event with an ack id, answered with a binary ACK as in the sample.
            _ = gateway.frame(#"421["tellme"]"#, at: 5)
            #expect(gateway.events.last?.1 == 1)
            let answer = SocketIOPacket(
                type: .binaryAck, ackID: 1, data: [SocketIOPacket.placeholder(0)], attachments: [[1, 2, 3]])
            for frame in answer.frames { gateway.emit(frame) }
            #expect(
                gateway.webSocketFrames.suffix(2) == [#"461-1[{"_placeholder":true,"num":0}]"#, "<binary 3 bytes>"])

            // After a while without message: the server pings, the client pongs, then closes.
            #expect(gateway.timer(at: 25) == [.sendOnWebSocket(.ping)])
            #expect(gateway.frame("3", at: 25.5) == [])
            #expect(gateway.engine.nextDeadline == at(50.5))
            _ = gateway.frame("1", at: 30)
            #expect(gateway.closed == .clientClosed)
            #expect(gateway.socket.state == .closed)
        }

        /// The engine.io-protocol document's WebSocket-only session, carrying Socket.IO as a real client does.
        @Test func webSocketOnlySession() {
            var gateway = SimulatedGateway(transport: .webSocket)
            #expect(
                gateway.webSocketFrames == [
                    #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
                ])
            _ = gateway.frame(#"40{"token":"Bearer good"}"#, at: 0.1)
            #expect(gateway.webSocketFrames.last == #"40{"sid":"sio-sid"}"#)
            gateway.emit(.text(SocketIOPacket.encodeEvent(name: "rebalance:created", data: ["jobId": "j1"])))
            #expect(gateway.webSocketFrames.last == #"42["rebalance:created",{"jobId":"j1"}]"#)
            _ = gateway.frame(#"42["ping"]"#, at: 1)
            #expect(gateway.webSocketFrames.last == #"42["pong"]"#)
            #expect(gateway.timer(at: 25) == [.sendOnWebSocket(.ping)])
            #expect(gateway.timer(at: 45) == [.closed(.pingTimeout)])
            #expect(gateway.socket.state == .closed)
        }

        /// A bad token: CONNECT_ERROR over polling, then the client's next event closes the session.
        @Test func badTokenGetsConnectErrorAndNoEvents() {
            var gateway = SimulatedGateway(transport: .polling)
            gateway.authenticate = { request in
                request.token == "Bearer good" ? .success("ok") : .failure(.init(message: "invalid token"))
            }
            _ = gateway.post(#"40{"token":"Bearer bad"}"#, at: 0.1)
            #expect(gateway.get() == [.respond(bytes(#"44{"message":"invalid token"}"#))])
            #expect(!gateway.socket.isConnected)
            _ = gateway.post(#"42["join-room","room:a"]"#, at: 0.2)
            #expect(gateway.events.isEmpty)
            // Closing: the client's next GET receives the close packet.
            #expect(gateway.engine.transport == nil)
            #expect(gateway.get() == [.respond(bytes("1")), .closed(.serverClosed)])
            #expect(gateway.closed == .serverClosed)
        }

        /// A malformed Socket.IO packet from one client closes that client only.
        @Test func malformedPacketClosesOnlyThatSession() {
            var bad = SimulatedGateway(transport: .webSocket)
            var good = SimulatedGateway(transport: .webSocket)
            _ = bad.frame("40", at: 0)
            _ = good.frame("40", at: 0)
            _ = bad.frame(#"42["join-room""#, at: 1)
            #expect(bad.closed == .serverClosed)
            _ = good.frame(#"42["join-room","room:a"]"#, at: 1)
            #expect(good.closed == nil)
            #expect(good.events.map(\.0) == [.joinRoom("room:a")])
        }
    }
}
