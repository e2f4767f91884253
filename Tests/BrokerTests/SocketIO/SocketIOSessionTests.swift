import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Socket.IO v5 session")
    struct SocketIOSessionTests {
        @Test func connectWithAuthIsAuthenticatedThenAccepted() {
            var session = SocketIOSession()
            let action = session.receive(#"0{"token":"Bearer abc","lastEventId":"1700000000000-3"}"#)
            let request = SocketIOConnectRequest(auth: ["token": "Bearer abc", "lastEventId": "1700000000000-3"])
            #expect(action == .authenticate(request))
            #expect(request.token == "Bearer abc")
            #expect(request.lastEventId == "1700000000000-3")
            #expect(session.state == .authenticating)
            #expect(!session.isConnected)
            #expect(
                session.connectAccepted(sid: "oSO0OpakMV_3jnilAAAA")
                    == .text(bytes(#"40{"sid":"oSO0OpakMV_3jnilAAAA"}"#)))
            #expect(session.state == .connected(sid: "oSO0OpakMV_3jnilAAAA"))
            #expect(session.connectAccepted(sid: "again") == nil)
        }

        @Test func connectWithoutAuthCarriesNoToken() {
            var session = SocketIOSession()
            #expect(session.receive("0") == .authenticate(SocketIOConnectRequest(auth: nil)))
            #expect(SocketIOConnectRequest(auth: ["token": 5, "lastEventId": 42]).token == nil)
            #expect(SocketIOConnectRequest(auth: ["lastEventId": 42]).lastEventId == "42")
        }

        @Test func rejectedConnectSendsConnectErrorAndNoEventsFlow() {
            var session = SocketIOSession()
            _ = session.receive(#"0{"token":"bad"}"#)
            #expect(
                session.connectRejected(message: "invalid token") == .text(bytes(#"44{"message":"invalid token"}"#)))
            #expect(session.state == .awaitingConnect)
            // An event after a refused CONNECT is out of place: the connection closes.
            #expect(session.receive(#"2["chat-message",{}]"#) == .close(.invalidState(.event)))
            #expect(session.state == .closed)
            #expect(session.receive("0") == SocketIOSession.Action.none)
        }

        @Test func clientMayRetryConnectAfterRefusal() {
            var session = SocketIOSession()
            _ = session.receive(#"0{"token":"bad"}"#)
            _ = session.connectRejected(message: "invalid token")
            #expect(
                session.receive(#"0{"token":"good"}"#) == .authenticate(SocketIOConnectRequest(auth: ["token": "good"]))
            )
        }

        @Test func unknownNamespaceGetsConnectError() {
            var session = SocketIOSession()
            #expect(
                session.receive(#"0/admin,{"token":"x"}"#)
                    == .send(.text(bytes(#"44/admin,{"message":"Invalid namespace"}"#))))
            #expect(session.state == .awaitingConnect)
            #expect(session.receive(#"2/admin,["x"]"#) == .close(.invalidState(.event)))
        }

        @Test(arguments: [#"2["ping"]"#, #"3["x"]"#, "1", #"4{"message":"x"}"#])
        func packetsBeforeConnectCloseTheConnection(wire: String) {
            var session = SocketIOSession()
            guard case .close = session.receive(wire) else {
                Issue.record("expected close")
                return
            }
            #expect(session.state == .closed)
        }

        @Test func packetsWhileAuthenticatingCloseTheConnection() {
            var session = SocketIOSession()
            _ = session.receive("0")
            #expect(session.receive(#"2["ping"]"#) == .close(.invalidState(.event)))
            #expect(session.connectAccepted(sid: "late") == nil)
        }

        @Test func secondConnectWhileConnectedClosesTheConnection() {
            var session = SocketIOSession.connected()
            #expect(session.receive("0") == .close(.invalidState(.connect)))
        }

        @Test func eventsAndAcks() {
            var session = SocketIOSession.connected()
            #expect(session.receive(#"2["ping"]"#) == .event(.ping, ackID: nil))
            #expect(session.receive(#"25["join-room","room:a"]"#) == .event(.joinRoom("room:a"), ackID: 5))
            #expect(session.receive(#"3/admin,1[]"#) == .close(.invalidState(.ack)))
            var other = SocketIOSession.connected()
            #expect(other.receive(#"31[true,"x"]"#) == .acknowledgement(id: 1, arguments: [true, "x"]))
        }

        @Test func disconnectAndReconnect() {
            var session = SocketIOSession.connected()
            #expect(session.receive("1") == .disconnected)
            #expect(session.state == .awaitingConnect)
            #expect(session.receive("0") == .authenticate(SocketIOConnectRequest(auth: nil)))
        }

        @Test func serverDisconnect() {
            var session = SocketIOSession.connected()
            #expect(session.disconnect() == .text(bytes("41")))
            #expect(session.disconnect() == nil)
        }

        @Test func malformedPacketClosesTheConnection() {
            var session = SocketIOSession.connected()
            #expect(session.receive(#"2["a""#).isClose)
            #expect(session.state == .closed)
            var other = SocketIOSession.connected()
            #expect(other.receive(#"2["connect"]"#) == .close(.reservedEventName("connect")))
        }

        @Test func binaryEventIsReassembled() {
            var session = SocketIOSession.connected()
            #expect(
                session.receive(#"52-3["upload",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#)
                    == SocketIOSession.Action.none)
            #expect(session.receive(.binary([1, 2])) == SocketIOSession.Action.none)
            let action = session.receive(.binary([3]))
            let expected = ClientEvent.other(
                name: "upload", arguments: [SocketIOPacket.placeholder(1), SocketIOPacket.placeholder(0)],
                attachments: [[1, 2], [3]])
            #expect(action == .event(expected, ackID: 3))
            // Back to text packets afterwards.
            #expect(session.receive(#"2["ping"]"#) == .event(.ping, ackID: nil))
        }

        @Test func binaryEventWithNoAttachmentsIsImmediate() {
            var session = SocketIOSession.connected()
            #expect(session.receive(#"50-["ping"]"#) == .event(.ping, ackID: nil))
        }

        @Test func textWhileWaitingForAttachmentsClosesTheConnection() {
            var session = SocketIOSession.connected()
            _ = session.receive(#"51-["upload",{"_placeholder":true,"num":0}]"#)
            #expect(session.receive(#"2["ping"]"#) == .close(.unexpectedTextMessage))
        }

        @Test func attachmentsAreBoundedInTotal() {
            var session = SocketIOSession(maximumAttachmentBytes: 4)
            _ = session.receive("0")
            _ = session.connectAccepted(sid: "s")
            _ = session.receive(#"52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
            #expect(session.receive(.binary([1, 2, 3])) == SocketIOSession.Action.none)
            #expect(session.receive(.binary([4, 5])) == .close(.attachmentsTooLarge))
            #expect(session.state == .closed)
        }

        @Test func binaryWithoutAPacketClosesTheConnection() {
            var session = SocketIOSession.connected()
            #expect(session.receive(.binary([1])) == .close(.unexpectedBinaryMessage))
        }

        @Test func transportClosedStopsEverything() {
            var session = SocketIOSession.connected()
            session.transportClosed()
            #expect(session.state == .closed)
            #expect(!session.isConnected)
            #expect(session.receive(#"2["ping"]"#) == SocketIOSession.Action.none)
        }
    }

    @Suite("Socket.IO client events")
    struct ClientEventTests {
        private func event(_ wire: String) throws -> ClientEvent {
            ClientEvent(try SocketIOPacket.decode(bytes(wire)))
        }

        @Test func parsesTheKnownEvents() throws {
            #expect(try event(#"2["join-room","room:a"]"#) == .joinRoom("room:a"))
            #expect(try event(#"2["join-room",{"roomId":"room:b"}]"#) == .joinRoom("room:b"))
            #expect(try event(#"2["leave-room",{"room":"room:c"}]"#) == .leaveRoom("room:c"))
            #expect(
                try event(#"2["chat-message",{"roomId":"room:a","message":"hi"}]"#)
                    == .chatMessage(roomId: "room:a", message: "hi"))
            #expect(
                try event(#"2["chat-message",{"roomId":"room:a","message":{"text":"hi"}}]"#)
                    == .chatMessage(roomId: "room:a", message: ["text": "hi"]))
            #expect(try event(#"2["ping"]"#) == .ping)
            #expect(try event(#"2["ping",{"t":1}]"#) == .ping)
        }

        @Test(arguments: [
            #"2["join-room"]"#, #"2["join-room",""]"#, #"2["join-room",5]"#, #"2["leave-room",{"name":"x"}]"#,
            #"2["chat-message"]"#, #"2["chat-message","hi"]"#, #"2["chat-message",{"roomId":"room:a"}]"#,
            #"2["chat-message",{"roomId":7,"message":"x"}]"#,
        ])
        func malformedKnownEventsAreReportedNotFatal(wire: String) throws {
            guard case .malformed = try event(wire) else {
                Issue.record("expected malformed for \(wire)")
                return
            }
        }

        @Test func binaryChatIsRefusedNotBroadcastAsPlaceholders() throws {
            var packet = try SocketIOPacket.decode(
                bytes(#"51-["chat-message",{"roomId":"room:a","message":{"_placeholder":true,"num":0}}]"#))
            packet.attachments = [[0, 1, 2]]
            #expect(
                ClientEvent(packet)
                    == .malformed(name: "chat-message", reason: "binary content is not supported; send text or JSON"))
        }

        @Test func unknownEventsPassThrough() throws {
            #expect(
                try event(#"2["custom",1,{"a":[true]}]"#)
                    == .other(name: "custom", arguments: [1, ["a": [true]]], attachments: []))
        }
    }

    @Suite("Socket.IO connect timeout")
    struct SocketIOConnectTimeoutTests {
        @Test func clientThatNeverConnectsIsDropped() {
            var session = SocketIOSession(connectDeadline: at(45))
            #expect(session.timerFired(now: at(44)) == SocketIOSession.Action.none)
            #expect(session.timerFired(now: at(45)) == .close(.connectTimeout))
            #expect(session.state == .closed)
        }

        @Test func connectedClientIsKept() {
            var session = SocketIOSession(connectDeadline: at(45))
            _ = session.receive("0")
            _ = session.connectAccepted(sid: "s")
            #expect(session.connectDeadline == nil)
            #expect(session.timerFired(now: at(50)) == SocketIOSession.Action.none)
            #expect(session.isConnected)
        }

        @Test func clientStillAuthenticatingAtTheDeadlineIsDropped() {
            var session = SocketIOSession(connectDeadline: at(45))
            _ = session.receive("0")
            #expect(session.timerFired(now: at(45)) == .close(.connectTimeout))
        }
    }
}
