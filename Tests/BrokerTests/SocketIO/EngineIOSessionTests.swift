import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Engine.IO v4 session: polling")
    struct EngineIOPollingTests {
        @Test func handshakeOffersTheUpgrade() {
            let session = pollingSession()
            #expect(
                session.openingFrame
                    == EngineIOHandshake(sid: "sid1", upgrades: ["websocket"], configuration: .init()).frame)
            #expect(session.transport == .polling)
            #expect(session.nextDeadline == at(25))
            let webSocket = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
            #expect(webSocket.handshake.upgrades == [])
            #expect(webSocket.transport == .webSocket)
        }

        @Test func pollIsHeldUntilSomethingIsSent() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.send(.text(bytes("42[\"a\"]"))) == .answerHeldPoll(bytes("42[\"a\"]")))
            // The poll was answered: the next frame waits for the next GET.
            #expect(session.send(.text(bytes("42[\"b\"]"))) == .buffered)
            #expect(session.send(.binary([1, 2])) == .buffered)
            #expect(session.bufferedFrameCount == 2)
            #expect(session.pollRequestArrived() == [.respond(bytes("42[\"b\"]\u{1e}bAQI="))])
            #expect(session.bufferedFrameCount == 0)
            #expect(session.pollRequestArrived() == [.hold])
        }

        @Test func postDeliversMessagesAndAnswersOK() {
            var session = pollingSession()
            let actions = session.postArrived(body: bytes("40{\"token\":\"t\"}\u{1e}bAQIDBA==\u{1e}6"), now: at(1))
            #expect(
                actions == [
                    .respond(bytes("ok")), .deliver(.text(bytes("0{\"token\":\"t\"}"))),
                    .deliver(.binary([1, 2, 3, 4])),
                ])
            #expect(session.transport == .polling)
        }

        @Test func secondConcurrentPollClosesTheSession() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            #expect(
                session.pollRequestArrived() == [
                    .reject(.badRequest), .answerHeldPoll(bytes("1")), .closed(.duplicatePoll),
                ])
            #expect(session.closeReason == .duplicatePoll)
            #expect(session.pollRequestArrived() == [.reject(.sessionIDUnknown)])
            #expect(session.postArrived(body: bytes("4x"), now: at(1)) == [.reject(.sessionIDUnknown)])
            #expect(session.send(.text(bytes("4x"))) == .discarded)
            #expect(session.nextDeadline == nil)
        }

        @Test(arguments: ["abc", "", "4a\u{1e}", "bnot base64!", "1x"])
        func malformedPostClosesTheSession(body: String) {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            let actions = session.postArrived(body: bytes(body), now: at(1))
            #expect(actions.first == .reject(.badRequest))
            #expect(actions.dropFirst().first == .answerHeldPoll(bytes("1")))
            guard case .closed(.parseError) = actions.last else {
                Issue.record("expected a parse error close, got \(actions)")
                return
            }
        }

        @Test func postOverMaxPayloadIsRefusedWith413() {
            var session = pollingSession(.init(maxPayload: 10))
            #expect(session.postArrived(body: bytes("4123456789"), now: at(1)).first == .respond(bytes("ok")))
            let actions = session.postArrived(body: bytes("41234567890"), now: at(1))
            #expect(
                actions == [.reject(.payloadTooLarge), .closed(.parseError(.payloadTooLarge(size: 11, limit: 10)))])
        }

        @Test func clientCloseReleasesTheHeldPollWithNoop() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            #expect(
                session.postArrived(body: bytes("1"), now: at(1)) == [
                    .respond(bytes("ok")), .answerHeldPoll(bytes("6")), .closed(.clientClosed),
                ])
            // Packets after the close in the same body are not delivered.
            var other = pollingSession()
            #expect(
                other.postArrived(body: bytes("4a\u{1e}1\u{1e}4b"), now: at(1)) == [
                    .respond(bytes("ok")), .deliver(.text(bytes("a"))), .closed(.clientClosed),
                ])
        }

        @Test func clientPingIsTheWrongHeartbeatDirection() {
            var session = pollingSession()
            #expect(
                session.postArrived(body: bytes("2"), now: at(1)) == [
                    .respond(bytes("ok")), .closed(.unexpectedPacket(.ping)),
                ])
            var other = pollingSession()
            #expect(
                other.postArrived(body: bytes("5"), now: at(1)) == [
                    .respond(bytes("ok")), .closed(.unexpectedPacket(.upgrade)),
                ])
        }

        @Test func droppedPollConnectionClosesTheSession() {
            var session = pollingSession()
            #expect(session.pollConnectionLost() == [])  // nothing held: nothing happens
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.pollConnectionLost() == [.closed(.transportClosed)])
        }

        @Test func outboundBufferIsBoundedByFrames() {
            var session = pollingSession(.init(maxBufferedFrames: 3))
            for _ in 0..<3 { #expect(session.send(.text(bytes("4x"))) == .buffered) }
            #expect(session.send(.text(bytes("4x"))) == .close([.closed(.outboundBufferFull)]))
            #expect(session.closeReason == .outboundBufferFull)
            #expect(session.bufferedFrameCount == 0)
        }

        @Test func outboundBufferIsBoundedByBytes() {
            var session = pollingSession(.init(maxBufferedBytes: 10))
            #expect(session.send(.text(bytes("4abcdefgh"))) == .buffered)  // 9 bytes + separator
            #expect(session.send(.text(bytes("4"))) == .close([.closed(.outboundBufferFull)]))
        }

        @Test func pollAnswersAreSplitAtMaxPayload() {
            var session = pollingSession(.init(maxPayload: 10))
            for letter in ["a", "b", "c"] { #expect(session.send(.text(bytes("4" + letter + "xx"))) == .buffered) }
            #expect(session.pollRequestArrived() == [.respond(bytes("4axx\u{1e}4bxx"))])
            #expect(session.pollRequestArrived() == [.respond(bytes("4cxx"))])
            // A frame larger than the limit still goes out, alone.
            #expect(session.send(.text(bytes("4" + String(repeating: "z", count: 20)))) == .buffered)
            #expect(session.pollRequestArrived().count == 1)
        }

        /// python-engineio drops the connection on a payload of more than 16 packets.
        @Test func pollAnswersHoldAtMost16Packets() {
            var session = pollingSession()
            for n in 0..<40 { #expect(session.send(.text(bytes("4\(n)"))) == .buffered) }
            var counts: [Int] = []
            var received: [String] = []
            while case .respond(let body)? = session.pollRequestArrived().first {
                let packets = String(decoding: body, as: UTF8.self).split(separator: "\u{1e}").map(String.init)
                counts.append(packets.count)
                received += packets
                if session.bufferedFrameCount == 0 { break }
            }
            #expect(counts == [16, 16, 8])
            #expect(received == (0..<40).map { "4\($0)" })
        }

        @Test func aClosingSessionsBacklogGoesIn16PacketAnswersThenTheClose() {
            var session = pollingSession()
            for n in 0..<20 { #expect(session.send(.text(bytes("4\(n)"))) == .buffered) }
            #expect(session.close(now: at(1)) == [])
            let first = session.pollRequestArrived()
            guard case .respond(let body)? = first.first else { Issue.record("\(first)"); return }
            // 15 frames: the close would have been the 16th, and 5 frames are left for it.
            #expect(String(decoding: body, as: UTF8.self).split(separator: "\u{1e}").count == 15)
            #expect(first.count == 1 && session.closeReason == nil)
            let last = session.pollRequestArrived()
            #expect(last == [.respond(bytes((15..<20).map { "4\($0)" }.joined(separator: "\u{1e}") + "\u{1e}1")), .closed(.serverClosed)])
        }

        @Test func serverCloseWithHeldPollAnswersClose() {
            var session = pollingSession()
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.close(now: at(1)) == [.answerHeldPoll(bytes("1")), .closed(.serverClosed)])
            #expect(session.close(now: at(2)) == [])
        }

        @Test func serverCloseFlushesTheBufferThenCloses() {
            var session = pollingSession()
            #expect(session.send(.text(bytes("41"))) == .buffered)
            #expect(session.close(now: at(1)) == [])
            #expect(session.transport == nil)
            #expect(session.send(.text(bytes("4late"))) == .discarded)
            #expect(session.postArrived(body: bytes("4x"), now: at(2)) == [.respond(bytes("ok"))])
            #expect(session.pollRequestArrived() == [.respond(bytes("41\u{1e}1")), .closed(.serverClosed)])
        }

        @Test func serverCloseGivesUpOnAClientThatNeverPolls() {
            var session = pollingSession()
            #expect(session.close(now: at(1)) == [])
            #expect(session.nextDeadline == at(21))
            #expect(session.timerFired(now: at(20)) == [])
            #expect(session.timerFired(now: at(21)) == [.closed(.serverClosed)])
        }
    }

    @Suite("Engine.IO v4 session: heartbeat")
    struct EngineIOHeartbeatTests {
        @Test func pingsAfterTheIntervalAndExpectsAPong() {
            var session = pollingSession()
            #expect(session.timerFired(now: at(24.9)) == [])
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.timerFired(now: at(25)) == [.answerHeldPoll(bytes("2"))])
            #expect(session.nextDeadline == at(45))
            #expect(session.postArrived(body: bytes("3"), now: at(26)) == [.respond(bytes("ok"))])
            #expect(session.nextDeadline == at(51))
            #expect(session.timerFired(now: at(50)) == [])
            // Without a held poll the ping waits in the buffer.
            #expect(session.timerFired(now: at(51)) == [])
            #expect(session.pollRequestArrived() == [.respond(bytes("2"))])
        }

        @Test func noPongWithinTheTimeoutClosesTheSession() {
            var session = pollingSession()
            #expect(session.timerFired(now: at(25)) == [])
            #expect(session.pollRequestArrived() == [.respond(bytes("2"))])
            #expect(session.pollRequestArrived() == [.hold])
            #expect(session.timerFired(now: at(44.999)) == [])
            #expect(session.timerFired(now: at(45)) == [.answerHeldPoll(bytes("1")), .closed(.pingTimeout)])
            #expect(session.closeReason == .pingTimeout)
            #expect(session.timerFired(now: at(100)) == [])
        }

        @Test func unsolicitedPongChangesNothing() {
            var session = pollingSession()
            _ = session.postArrived(body: bytes("3"), now: at(10))
            #expect(session.nextDeadline == at(25))
        }

        @Test func webSocketSessionPingsOnTheSocket() {
            var session = EngineIOSession(sid: "s", transport: .webSocket, configuration: .init(), now: start)
            #expect(session.timerFired(now: at(25)) == [.sendOnWebSocket(.ping)])
            #expect(session.webSocketFrameArrived(.text(bytes("3")), now: at(26)) == [])
            #expect(session.timerFired(now: at(51)) == [.sendOnWebSocket(.ping)])
            #expect(session.timerFired(now: at(71)) == [.closed(.pingTimeout)])
        }
    }
}
