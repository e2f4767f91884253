import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Engine.IO v4 session: upgrade and WebSocket")
    struct EngineIOUpgradeTests {
        /// The sequence an engine.io-client runs: poll held, WebSocket opens, `2probe`/`3probe`,
        /// the held poll released with `6`, `5`, then the buffer moves to the WebSocket.
        @Test func fullUpgradeSequence() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.webSocketOpened(now: at(1)) == [.acceptWebSocket])
            #expect(session.isUpgrading)
            #expect(session.nextDeadline == at(11))
            // Before the probe, sending still answers the held poll over polling.
            #expect(session.send(.text(bytes("4a"))) == .answerHeldPoll(bytes("4a")))
            #expect(session.pollRequestArrived() == [.hold])
            #expect(
                session.webSocketFrameArrived(.text(bytes("2probe")), now: at(1.1)) == [
                    .sendOnWebSocket(.probeAnswer), .answerHeldPoll(bytes("6")),
                ])
            // While the client pauses polling, a GET is answered at once, and POSTs still work.
            #expect(session.pollRequestArrived() == [.respond(bytes("6"))])
            #expect(
                session.postArrived(body: bytes("4up"), now: at(1.2)) == [
                    .respond(bytes("ok")), .deliver(.text(bytes("up"))),
                ])
            #expect(session.send(.text(bytes("4b"))) == .buffered)
            #expect(session.send(.binary([9])) == .buffered)
            #expect(
                session.webSocketFrameArrived(.text(bytes("5")), now: at(1.3)) == [
                    .upgraded, .sendOnWebSocket(.text(bytes("4b"))), .sendOnWebSocket(.binary([9])),
                ])
            #expect(session.transport == .webSocket)
            #expect(!session.isUpgrading)
            #expect(session.bufferedFrameCount == 0)
            // From now on: frames go straight to the socket, polling is refused, messages flow.
            #expect(session.send(.text(bytes("4c"))) == .sendOnWebSocket(.text(bytes("4c"))))
            #expect(session.pollRequestArrived() == [.reject(.badRequest)])
            #expect(session.postArrived(body: bytes("4x"), now: at(2)) == [.reject(.badRequest)])
            #expect(session.webSocketOpened(now: at(2)) == [.reject(.badRequest)])
            #expect(
                session.webSocketFrameArrived(.text(bytes("4hello")), now: at(2)) == [.deliver(.text(bytes("hello")))])
            #expect(session.webSocketFrameArrived(.binary([1]), now: at(2)) == [.deliver(.binary([1]))])
            #expect(session.nextDeadline == at(25))
        }

        @Test func afterTheProbeNoPollIsHeldSoUpgradeFindsNone() {
            var session = pollingSession()
            _ = session.webSocketOpened(now: at(1))
            _ = session.webSocketFrameArrived(.text(bytes("2probe")), now: at(1))
            #expect(session.pollRequestArrived() == [.respond(bytes("6"))])
            #expect(session.pollRequestArrived() == [.respond(bytes("6"))])
            #expect(session.webSocketFrameArrived(.text(bytes("5")), now: at(2)) == [.upgraded])
        }

        @Test(arguments: ["5", "4hello", "2", "2probX", "3probe", "1", "", "x"])
        func anythingElseOnTheProbeAbortsTheUpgradeOnly(frame: String) {
            var session = pollingSession()
            #expect(session.webSocketOpened(now: at(1)) == [.acceptWebSocket])
            #expect(session.webSocketFrameArrived(.text(bytes(frame)), now: at(1)) == [.closeProbeWebSocket])
            #expect(session.transport == .polling)
            #expect(!session.isUpgrading)
            #expect(session.pollRequestArrived() == [.hold])
            // The client may try again.
            #expect(session.webSocketOpened(now: at(2)) == [.acceptWebSocket])
        }

        @Test func secondProbeAbortsTheUpgrade() {
            var session = pollingSession()
            _ = session.webSocketOpened(now: at(1))
            _ = session.webSocketFrameArrived(.text(bytes("2probe")), now: at(1))
            #expect(session.webSocketFrameArrived(.text(bytes("2probe")), now: at(1)) == [.closeProbeWebSocket])
        }

        @Test func secondWebSocketDuringAnUpgradeIsRefused() {
            var session = pollingSession()
            #expect(session.webSocketOpened(now: at(1)) == [.acceptWebSocket])
            #expect(session.webSocketOpened(now: at(1)) == [.reject(.badRequest)])
        }

        @Test func upgradeTimesOut() {
            var session = pollingSession()
            _ = session.webSocketOpened(now: at(1))
            _ = session.webSocketFrameArrived(.text(bytes("2probe")), now: at(2))
            #expect(session.timerFired(now: at(10.9)) == [])
            #expect(session.timerFired(now: at(11)) == [.closeProbeWebSocket])
            #expect(session.transport == .polling)
            #expect(session.pollRequestArrived() == [.hold])
        }

        @Test func probeWebSocketClosingLeavesPollingIntact() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            _ = session.webSocketOpened(now: at(1))
            #expect(session.webSocketClosed() == [])
            #expect(!session.isUpgrading)
            #expect(session.send(.text(bytes("4a"))) == .answerHeldPoll(bytes("4a")))
        }

        @Test func pollConnectionLostDuringUpgradeIsHarmless() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            _ = session.webSocketOpened(now: at(1))
            #expect(session.pollConnectionLost() == [])
            #expect(session.transport == .polling)
        }

        @Test func oversizedProbeFrameAbortsTheUpgrade() {
            var session = pollingSession(.init(maxPayload: 4))
            _ = session.webSocketOpened(now: at(1))
            #expect(session.webSocketFrameArrived(.text(bytes("2probe")), now: at(1)) == [.closeProbeWebSocket])
        }

        @Test func serverCloseDuringUpgradeClosesTheProbeToo() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            _ = session.webSocketOpened(now: at(1))
            #expect(
                session.close(now: at(2)) == [
                    .closeProbeWebSocket, .answerHeldPoll(bytes("1")), .closed(.serverClosed),
                ])
        }

        @Test func webSocketSessionClosesOnMalformedFrames() {
            for (frame, reason) in [
                ("", EngineIOSession.CloseReason.parseError(.emptyPacket)),
                ("9", .parseError(.unknownPacketType(UInt8(ascii: "9")))),
                ("2", .unexpectedPacket(.ping)),
                ("0{}", .unexpectedPacket(.open)),
                ("5", .unexpectedPacket(.upgrade)),
                ("1", .clientClosed),
            ] {
                var session = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
                #expect(session.webSocketFrameArrived(.text(bytes(frame)), now: at(1)) == [.closed(reason)])
                #expect(session.webSocketFrameArrived(.text(bytes("4late")), now: at(1)) == [])
            }
        }

        @Test func webSocketFrameOverMaxPayloadClosesTheSession() {
            var session = EngineIOSession(
                sid: "s", transport: .webSocket, configuration: .init(maxPayload: 3), now: start)
            #expect(session.webSocketFrameArrived(.text(bytes("4ab")), now: at(1)) == [.deliver(.text(bytes("ab")))])
            #expect(
                session.webSocketFrameArrived(.binary([1, 2, 3, 4]), now: at(1)) == [
                    .closed(.parseError(.payloadTooLarge(size: 4, limit: 3)))
                ])
        }

        @Test func webSocketNoopIsIgnoredAndClosingEndsTheSession() {
            var session = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
            #expect(session.webSocketFrameArrived(.text(bytes("6")), now: at(1)) == [])
            #expect(session.webSocketClosed() == [.closed(.transportClosed)])
            #expect(session.webSocketClosed() == [])
            #expect(session.close(now: at(2)) == [])
        }

        @Test func serverCloseOnWebSocket() {
            var session = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
            #expect(session.close(now: at(1)) == [.closed(.serverClosed)])
            #expect(session.send(.text(bytes("4x"))) == .discarded)
        }
    }
}
