import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("Engine.IO request classification")
    struct EngineIORequestTests {
        private func classify(
            _ method: EngineIORequest.Method, eio: String? = "4", transport: String?, sid: String? = nil,
            upgrade: Bool = false
        ) throws(EngineIOHTTPError) -> EngineIORequest {
            try EngineIORequest.classify(
                method: method, eio: eio, transport: transport, sid: sid, isWebSocketUpgrade: upgrade)
        }

        @Test func validRequests() throws {
            #expect(try classify(.get, transport: "polling") == .handshake(.polling))
            #expect(try classify(.get, transport: "websocket", upgrade: true) == .handshake(.webSocket))
            #expect(try classify(.get, transport: "polling", sid: "abc") == .poll(sid: "abc"))
            #expect(try classify(.post, transport: "polling", sid: "abc") == .post(sid: "abc"))
            #expect(try classify(.get, transport: "websocket", sid: "abc", upgrade: true) == .upgrade(sid: "abc"))
        }

        @Test func invalidRequests() {
            #expect(throws: EngineIOHTTPError.transportUnknown) { try classify(.get, transport: nil) }
            #expect(throws: EngineIOHTTPError.transportUnknown) { try classify(.get, transport: "abc") }
            #expect(throws: EngineIOHTTPError.unsupportedProtocolVersion) {
                try classify(.get, eio: nil, transport: "polling")
            }
            #expect(throws: EngineIOHTTPError.unsupportedProtocolVersion) {
                try classify(.get, eio: "3", transport: "polling")
            }
            #expect(throws: EngineIOHTTPError.unsupportedProtocolVersion) {
                try classify(.get, eio: "abc", transport: "polling")
            }
            #expect(throws: EngineIOHTTPError.badHandshakeMethod) { try classify(.post, transport: "polling") }
            #expect(throws: EngineIOHTTPError.badHandshakeMethod) { try classify(.other, transport: "polling") }
            #expect(throws: EngineIOHTTPError.badRequest) { try classify(.get, transport: "websocket") }
            #expect(throws: EngineIOHTTPError.badRequest) { try classify(.other, transport: "polling", sid: "abc") }
            #expect(throws: EngineIOHTTPError.badRequest) { try classify(.get, transport: "websocket", sid: "abc") }
            #expect(throws: EngineIOHTTPError.badRequest) {
                try classify(.post, transport: "websocket", sid: "abc", upgrade: true)
            }
        }

        @Test func sessionIDsAreRandomAndURLSafe() {
            let ids = (0..<100).map { _ in EngineIOSession.makeSessionID() }
            #expect(Set(ids).count == 100)
            for id in ids {
                #expect(id.utf8.count == 20)
                #expect(
                    id.utf8.allSatisfy {
                        $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57)
                            || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122)
                    })
            }
        }
    }
}
