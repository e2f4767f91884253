import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Engine.IO v4 codec")
    struct EngineIOCodecTests {
        @Test(arguments: [
            (EngineIOPacket.open(data: bytes(#"{"sid":"x"}"#)), #"0{"sid":"x"}"#),
            (.close, "1"),
            (.ping(data: []), "2"),
            (.ping(data: bytes("probe")), "2probe"),
            (.pong(data: []), "3"),
            (.pong(data: bytes("probe")), "3probe"),
            (.message(bytes("HelloWorld")), "4HelloWorld"),
            (.message([]), "4"),
            (.message(bytes(#"2["é",{}]"#)), #"42["é",{}]"#),
            (.upgrade, "5"),
            (.noop, "6"),
        ])
        func textPacketRoundTrip(packet: EngineIOPacket, wire: String) throws {
            #expect(packet.frame == .text(bytes(wire)))
            #expect(try EngineIOPacket.decode(text: bytes(wire)) == packet)
            #expect(try EngineIOPacket.decode(.text(bytes(wire))) == packet)
        }

        @Test func binaryPacketRoundTrip() throws {
            let packet = EngineIOPacket.binaryMessage([0, 1, 2, 3, 255])
            #expect(packet.frame == .binary([0, 1, 2, 3, 255]))
            #expect(try EngineIOPacket.decode(.binary([0, 1, 2, 3, 255])) == packet)
            #expect(packet.type == .message)
        }

        @Test(arguments: [
            ("", EngineIOError.emptyPacket),
            ("7", .unknownPacketType(UInt8(ascii: "7"))),
            ("a", .unknownPacketType(UInt8(ascii: "a"))),
            ("/", .unknownPacketType(UInt8(ascii: "/"))),
            ("1x", .unexpectedData(.close)),
            ("5probe", .unexpectedData(.upgrade)),
            ("6 ", .unexpectedData(.noop)),
        ])
        func malformedTextPackets(wire: String, error: EngineIOError) {
            #expect(throws: error) { try EngineIOPacket.decode(text: bytes(wire)) }
        }

        @Test func handshakeIsExactlyWhatClientsExpect() {
            let handshake = EngineIOHandshake(
                sid: "lv_VI97HAXpY6yYWAAAC", upgrades: ["websocket"], configuration: .init())
            #expect(
                text(handshake.frame.bytes)
                    == #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            )
            let custom = EngineIOConfiguration(
                pingInterval: .milliseconds(300), pingTimeout: .milliseconds(200), maxPayload: 1000)
            let webSocket = EngineIOHandshake(sid: "a\"b", upgrades: [], configuration: custom)
            #expect(
                text(webSocket.frame.bytes)
                    == #"0{"sid":"a\"b","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#)
        }

        @Test func handshakeParsesAsJSON() throws {
            let frame = EngineIOHandshake(sid: "abc", upgrades: ["websocket"], configuration: .init()).frame
            guard case .open(let data) = try EngineIOPacket.decode(frame) else {
                Issue.record("not an open packet")
                return
            }
            let json = try JSONValue.parse(utf8: data)
            #expect(
                json == [
                    "sid": "abc", "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
                    "maxPayload": 1_000_000,
                ])
        }

        @Test func httpErrorsMatchTheReferenceServer() {
            #expect(text(EngineIOHTTPError.sessionIDUnknown.body) == #"{"code":1,"message":"Session ID unknown"}"#)
            #expect(text(EngineIOHTTPError.transportUnknown.body) == #"{"code":0,"message":"Transport unknown"}"#)
            #expect(EngineIOHTTPError.badRequest.httpStatus == 400)
            #expect(EngineIOHTTPError.forbidden.httpStatus == 403)
            #expect(EngineIOHTTPError.payloadTooLarge.httpStatus == 413)
        }
    }

    @Suite("Engine.IO v4 polling payload")
    struct EngineIOPayloadTests {
        @Test func decodesSeveralPacketsAndBinary() throws {
            // The protocol document's example: "4hello" then binary [1, 2, 3, 4].
            let body = bytes("4hello\u{1e}bAQIDBA==\u{1e}3\u{1e}4\u{1e}1")
            #expect(
                try EngineIOPayload.decode(body, maxPayload: 1000) == [
                    .message(bytes("hello")), .binaryMessage([1, 2, 3, 4]), .pong(data: []), .message([]), .close,
                ])
        }

        /// The engine.io-protocol document's payload examples.
        @Test func protocolDocumentExamples() throws {
            #expect(
                EngineIOPayload.encode([EngineIOFrame.text(bytes("4hello")), .text(bytes("4€"))])
                    == bytes("4hello\u{1e}4€"))
            #expect(
                EngineIOPayload.encode([EngineIOFrame.text(bytes("4€")), .binary([1, 2, 3, 4])])
                    == bytes("4€\u{1e}bAQIDBA=="))
            #expect(
                try EngineIOPayload.decode(bytes("4€\u{1e}bAQIDBA=="), maxPayload: 100) == [
                    .message(bytes("€")), .binaryMessage([1, 2, 3, 4]),
                ])
        }

        @Test func encodesSeveralPacketsAndBinary() {
            let frames: [EngineIOFrame] = [
                .text(bytes("4hello")), .binary([1, 2, 3, 4]), .text(bytes("2")), .binary([]),
            ]
            #expect(text(EngineIOPayload.encode(frames)) == "4hello\u{1e}bAQIDBA==\u{1e}2\u{1e}b")
            #expect(EngineIOPayload.encode(frames).count == frames.map(EngineIOPayload.encodedSize).reduce(0, +) + 3)
        }

        @Test func oneTextFrameIsItsOwnPayload() {
            #expect(EngineIOPayload.encode([EngineIOFrame.text(bytes("42[\"a\"]"))]) == bytes("42[\"a\"]"))
            #expect(EngineIOPayload.encode([EngineIOFrame]()) == [])
        }

        @Test(arguments: [[UInt8](), [0], [0, 1], [0, 1, 2], [255, 254, 253, 252], Array(0...255)])
        func payloadRoundTripsBinary(data: [UInt8]) throws {
            let body = EngineIOPayload.encode([.text(bytes("4x")), .binary(data)])
            #expect(
                try EngineIOPayload.decode(body, maxPayload: 10_000) == [.message(bytes("x")), .binaryMessage(data)])
        }

        @Test func base64MatchesRFC4648Vectors() {
            let vectors = [
                "": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=",
                "foobar": "Zm9vYmFy",
            ]
            for (plain, encoded) in vectors {
                var output: [UInt8] = []
                Base64.encode(bytes(plain), to: &output)
                #expect(text(output) == encoded)
                #expect(Base64.decode(bytes(encoded)) == bytes(plain))
            }
            #expect(Base64.decode(bytes("Zm9vYg")) == bytes("foob"))  // unpadded is accepted
        }

        @Test(arguments: [
            ("", EngineIOError.emptyPacket),
            ("4a\u{1e}", .emptyPacket),
            ("\u{1e}4a", .emptyPacket),
            ("4a\u{1e}\u{1e}4b", .emptyPacket),
            ("abc", .unknownPacketType(UInt8(ascii: "a"))),
            ("4a\u{1e}9", .unknownPacketType(UInt8(ascii: "9"))),
            ("b!!!!", .invalidBase64),
            ("bZ", .invalidBase64),
            ("bZg=a", .invalidBase64),
            ("bZh==", .invalidBase64),  // non-canonical: leftover bits set
            ("b====", .invalidBase64),
            ("1x", .unexpectedData(.close)),
        ])
        func malformedPayloads(body: String, error: EngineIOError) {
            #expect(throws: error) { try EngineIOPayload.decode(bytes(body), maxPayload: 1000) }
        }

        @Test func enforcesMaxPayloadBeforeDecoding() throws {
            let body = bytes("4" + String(repeating: "x", count: 99))
            #expect(try EngineIOPayload.decode(body, maxPayload: 100).count == 1)
            #expect(throws: EngineIOError.payloadTooLarge(size: 101, limit: 100)) {
                try EngineIOPayload.decode(body + [0x31], maxPayload: 100)
            }
            // Even garbage over the limit is refused for its size, not parsed.
            #expect(throws: EngineIOError.payloadTooLarge(size: 11, limit: 10)) {
                try EngineIOPayload.decode(Array(repeating: 0xFF, count: 11), maxPayload: 10)
            }
        }
    }
}
