import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Socket.IO v5 codec")
    struct SocketIOCodecTests {
        /// The protocol document's examples, one per packet type and form.
        @Test(arguments: [
            (SocketIOPacket(type: .connect), "0"),
            (SocketIOPacket(type: .connect, data: ["token": "123"]), #"0{"token":"123"}"#),
            (SocketIOPacket(type: .connect, namespace: "/admin", data: ["token": "123"]), #"0/admin,{"token":"123"}"#),
            (
                SocketIOPacket(type: .connect, data: ["sid": "oSO0OpakMV_3jnilAAAA"]),
                #"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#
            ),
            (SocketIOPacket(type: .disconnect), "1"),
            (SocketIOPacket(type: .disconnect, namespace: "/admin"), "1/admin,"),
            (SocketIOPacket(type: .event, data: ["foo"]), #"2["foo"]"#),
            (SocketIOPacket(type: .event, data: ["hello", 1]), #"2["hello",1]"#),
            (SocketIOPacket(type: .event, namespace: "/admin", data: ["bar"]), #"2/admin,["bar"]"#),
            (SocketIOPacket(type: .event, ackID: 12, data: ["foo"]), #"212["foo"]"#),
            (SocketIOPacket(type: .event, namespace: "/admin", ackID: 13, data: ["bar"]), #"2/admin,13["bar"]"#),
            (SocketIOPacket(type: .ack, ackID: 12, data: ["bar"]), #"312["bar"]"#),
            (SocketIOPacket(type: .ack, namespace: "/admin", ackID: 13, data: ["bar"]), #"3/admin,13["bar"]"#),
            (SocketIOPacket(type: .ack, ackID: 0, data: []), "30[]"),
            (
                SocketIOPacket(type: .connectError, data: ["message": "Not authorized"]),
                #"4{"message":"Not authorized"}"#
            ),
            (
                SocketIOPacket(type: .connectError, namespace: "/admin", data: "Not authorized"),
                #"4/admin,"Not authorized""#
            ),
        ])
        func textPacketRoundTrip(packet: SocketIOPacket, wire: String) throws {
            #expect(text(packet.encoded) == wire)
            #expect(packet.frames == [.text(bytes("4" + wire))])
            #expect(try SocketIOPacket.decode(bytes(wire)) == packet)
        }

        @Test func binaryEventHeader() throws {
            let wire = #"51-["hello",{"_placeholder":true,"num":0}]"#
            let packet = try SocketIOPacket.decode(bytes(wire))
            #expect(packet.type == .binaryEvent)
            #expect(packet.attachmentCount == 1)
            #expect(packet.eventName == "hello")
            #expect(packet.arguments == [SocketIOPacket.placeholder(0)])
            #expect(packet.attachments.isEmpty)

            let withAck = try SocketIOPacket.decode(
                bytes(#"52-/admin,456["x",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#))
            #expect(withAck.namespace == "/admin")
            #expect(withAck.ackID == 456)
            #expect(withAck.attachmentCount == 2)

            let ack = try SocketIOPacket.decode(bytes(#"61-/admin,456[{"_placeholder":true,"num":0}]"#))
            #expect(ack.type == .binaryAck)
            #expect(ack.ackID == 456)
            #expect(ack.arguments == [SocketIOPacket.placeholder(0)])
        }

        @Test func binaryPacketEncodesItsAttachmentsAsFrames() throws {
            let packet = SocketIOPacket(
                type: .binaryEvent, data: ["file", SocketIOPacket.placeholder(0)], attachments: [[1, 2, 3]])
            #expect(
                packet.frames == [.text(bytes(#"451-["file",{"_placeholder":true,"num":0}]"#)), .binary([1, 2, 3])])
            var decoded = try SocketIOPacket.decode(packet.encoded)
            decoded.attachments = [[1, 2, 3]]
            #expect(decoded == packet)
            #expect(decoded.attachment(for: decoded.arguments[0]) == [1, 2, 3])
            #expect(decoded.attachment(for: "not a placeholder") == nil)
        }

        @Test(arguments: [
            ("", SocketIOError.emptyPacket),
            ("7", .unknownPacketType(UInt8(ascii: "7"))),
            ("x[]", .unknownPacketType(UInt8(ascii: "x"))),
            ("2", .invalidPayload(.event)),
            ("2[]", .invalidPayload(.event)),
            ("2{}", .invalidPayload(.event)),
            ("2\"hello\"", .invalidPayload(.event)),
            ("2[1]", .invalidPayload(.event)),
            ("2[null]", .invalidPayload(.event)),
            ("2/admin,", .invalidPayload(.event)),
            (#"2["connect"]"#, .reservedEventName("connect")),
            (#"2["disconnecting",1]"#, .reservedEventName("disconnecting")),
            ("0[]", .invalidPayload(.connect)),
            ("0\"token\"", .invalidPayload(.connect)),
            ("0/admin,1", .unexpectedAckID(.connect)),
            ("11", .unexpectedAckID(.disconnect)),
            (#"41{"message":"x"}"#, .unexpectedAckID(.connectError)),
            ("1{}", .invalidPayload(.disconnect)),
            ("3[]", .missingAckID),
            ("31{}", .invalidPayload(.ack)),
            ("31", .invalidPayload(.ack)),
            ("4", .invalidPayload(.connectError)),
            ("4[1]", .invalidPayload(.connectError)),
            (#"5["a"]"#, .invalidAttachmentCount),
            (#"5-["a"]"#, .invalidAttachmentCount),
            (#"5x-["a"]"#, .invalidAttachmentCount),
            ("51", .invalidAttachmentCount),
            (#"5999-["a"]"#, .tooManyAttachments(99)),
            (#"61-[{"_placeholder":true,"num":0}]"#, .missingAckID),
            (#"51-["a",{"_placeholder":true,"num":1}]"#, .attachmentMismatch),
            (#"51-["a",{"_placeholder":true,"num":-1}]"#, .attachmentMismatch),
            (#"51-["a",{"_placeholder":true,"num":"0"}]"#, .attachmentMismatch),
            (#"51-["a",{"_placeholder":true}]"#, .attachmentMismatch),
            (#"51-["a",[{"x":{"_placeholder":true,"num":3}}]]"#, .attachmentMismatch),
            (#"52-["a",{"_placeholder":true,"num":0}]"#, .attachmentMismatch),
            (#"52-["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]"#, .attachmentMismatch),
            (#"51-["a"]"#, .attachmentMismatch),
            ("29007199254740992[\"a\"]", .ackIDOverflow),
            ("2999999999999999999999[\"a\"]", .ackIDOverflow),
        ])
        func malformedPackets(wire: String, error: SocketIOError) {
            #expect(throws: error) { try SocketIOPacket.decode(bytes(wire)) }
        }

        @Test(arguments: [#"2["a""#, "2[\"a\"]x", "2[\"a\",]", "0{token:1}", "2/admin,[\"a\"", "212[\"a\"]]"])
        func badJSONIsATypedError(wire: String) {
            #expect {
                try SocketIOPacket.decode(bytes(wire))
            } throws: { error in
                guard case SocketIOError.invalidJSON = error else { return false }
                return true
            }
        }

        @Test func invalidUTF8NamespaceIsRejected() {
            #expect(throws: SocketIOError.invalidNamespace) {
                try SocketIOPacket.decode([0x32, 0x2F, 0xFF, 0x2C, 0x5B, 0x5D])
            }
        }

        @Test func largestAckIDIsAccepted() throws {
            let packet = try SocketIOPacket.decode(bytes("29007199254740991[\"a\"]"))
            #expect(packet.ackID == SocketIOPacket.maximumAckID)
        }

        @Test func namespaceWithoutCommaRunsToTheEnd() throws {
            #expect(try SocketIOPacket.decode(bytes("0/admin")).namespace == "/admin")
            #expect(
                try SocketIOPacket.decode(bytes("1/admin")) == SocketIOPacket(type: .disconnect, namespace: "/admin"))
        }

        @Test func eventEncodingForBroadcasts() throws {
            let data: JSONValue = ["jobId": "j1", "status": "processing", "eventId": "7"]
            let frame = SocketIOPacket.encodeEvent(name: "rebalance:processing", data: data)
            #expect(text(frame) == #"42["rebalance:processing",{"eventId":"7","jobId":"j1","status":"processing"}]"#)
            // Decoding the same bytes as a client gives the event back.
            guard case .message(let message) = try EngineIOPacket.decode(text: frame) else {
                Issue.record("not a message")
                return
            }
            let packet = try SocketIOPacket.decode(message)
            #expect(packet.eventName == "rebalance:processing")
            #expect(packet.arguments == [data])
            // Raw JSON splice gives identical bytes for identical JSON.
            #expect(SocketIOPacket.encodeEvent(name: "rebalance:processing", json: data.jsonBytes) == frame)
            #expect(SocketIOPacket.encodeEvent(name: "rebalance:processing", json: text(data.jsonBytes)) == frame)
            #expect(text(SocketIOPacket.encodeEvent(name: "pong", arguments: [])) == #"42["pong"]"#)
            #expect(text(SocketIOPacket.encodeEvent(name: "a\"b", arguments: [1, "x"])) == #"42["a\"b",1,"x"]"#)
            #expect(text(SocketIOPacket.encodeAck(id: 7, arguments: [["ok": true]])) == #"437[{"ok":true}]"#)
        }
    }
}
