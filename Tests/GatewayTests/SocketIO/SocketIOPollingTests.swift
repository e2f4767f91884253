import Broker
import Foundation
import Gateway
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Socket.IO over HTTP long-polling")
struct SocketIOPollingTests {
    @Test func handshakeAdvertisesTheUpgradeAndSettings() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        try await gateway.run { client in
            let response = try await client.execute(uri: PollingClient.base, method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; charset=UTF-8")
            let body = String(buffer: response.body)
            #expect(body.hasPrefix(#"0{"sid":""#))
            #expect(
                body.hasSuffix(
                    #","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}"#))
            #expect(gateway.transport.sessionCount == 1)
        }
    }

    @Test func headOpensNoSession() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        try await gateway.run { client in
            let response = try await client.execute(uri: PollingClient.base, method: .head)
            #expect(response.status == .badRequest)
            #expect(gateway.transport.sessionCount == 0)
        }
    }

    @Test func connectWithTokenInAuthPayload() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("alice")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client)
            let answer = try await polling.connect(auth: #"{"token":"Bearer \#(token)"}"#)
            #expect(answer.hasPrefix(#"40{"sid":""#))
            #expect(gateway.router.registry.hasSessions(ofUser: "alice"))
        }
    }

    @Test func connectWithTokenInQueryOrHeader() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("bob")
        try await gateway.run { client in
            let byQuery = try await PollingClient.open(client, query: "&token=\(token)")
            #expect(try await byQuery.connect().hasPrefix(#"40{"sid":""#))
            let byHeader = try await PollingClient.open(client, headers: [.authorization: "Bearer \(token)"])
            #expect(try await byHeader.connect().hasPrefix(#"40{"sid":""#))
            #expect(gateway.router.registry.counts.sessions == 2)
        }
    }

    @Test func badTokenIsRefusedWithConnectError() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let good = try await gateway.base.token("carol")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client)
            #expect(
                try await polling.connect(auth: #"{"token":"Bearer not-a-token"}"#) == #"44{"message":"invalid token: not a JWT"}"#
            )
            let missing = try await PollingClient.open(client)
            #expect(try await missing.connect() == #"44{"message":"missing token"}"#)
            // Signed with another secret.
            let forged = good.dropLast(4) + "AAAA"
            let other = try await PollingClient.open(client)
            #expect(try await other.connect(auth: #"{"token":"\#(forged)"}"#)
                    == #"44{"message":"invalid token: its signature does not match this server's secret"}"#)
            #expect(gateway.router.registry.counts.sessions == 0)
        }
    }

    @Test func unknownSessionAndBadRequestsGetTheProtocolErrors() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        try await gateway.run { client in
            let unknown = PollingClient.base + "&sid=nope"
            for method in [HTTPRequest.Method.get, .post] {
                let response = try await client.execute(uri: unknown, method: method, body: ByteBuffer(string: "40"))
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body) == #"{"code":1,"message":"Session ID unknown"}"#)
            }
            let version = try await client.execute(uri: "/socket.io/?EIO=3&transport=polling", method: .get)
            #expect(String(buffer: version.body) == #"{"code":5,"message":"Unsupported protocol version"}"#)
            let transport = try await client.execute(uri: "/socket.io/?EIO=4&transport=carrier-pigeon", method: .get)
            #expect(String(buffer: transport.body) == #"{"code":0,"message":"Transport unknown"}"#)
            let handshakePost = try await client.execute(uri: PollingClient.base, method: .post)
            #expect(String(buffer: handshakePost.body) == #"{"code":2,"message":"Bad handshake method"}"#)
            #expect(gateway.transport.sessionCount == 0)
        }
    }

    @Test func jobEventsArriveAsSocketIOEvents() async throws {
        let gateway = try await SocketIOTestGateway()
        let token = try await gateway.base.token("dave")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client)
            #expect(try await polling.connect(auth: #"{"token":"\#(token)"}"#).hasPrefix("40{"))
            let jobId = try await gateway.base.createJob(client, token: token)
            let packets = try await polling.collect(until: { socketIOEvent($0)?.name == "rebalance:done" })
            let events = packets.compactMap(socketIOEvent)
            #expect(events.map(\.name) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
            for event in events {
                #expect(event.data?["jobId"]?.stringValue == jobId)
                #expect(event.data?["eventId"]?.stringValue != nil)
            }
        }
    }

    @Test func replayAfterLastEventIdThenLive() async throws {
        let gateway = try await SocketIOTestGateway()
        let token = try await gateway.base.token("erin")
        try await gateway.run { client in
            let first = try await PollingClient.open(client)
            _ = try await first.connect(auth: #"{"token":"\#(token)"}"#)
            _ = try await gateway.base.createJob(client, token: token)
            let seen = try await first.collect(until: { socketIOEvent($0)?.name == "rebalance:done" }).compactMap(
                socketIOEvent)
            let ids = seen.compactMap { $0.data?["eventId"]?.stringValue }
            #expect(ids.count == 3, "\(seen)")
            try await first.post("1")

            let second = try await PollingClient.open(client)
            let answer = try await second.connect(auth: #"{"token":"\#(token)","lastEventId":"\#(ids[0])"}"#)
            try #require(answer.hasPrefix("40{"), "\(answer)")
            let replayed = try await second.collect(until: { socketIOEvent($0)?.name == "rebalance:done" })
                .compactMap(socketIOEvent)
            #expect(replayed.compactMap { $0.data?["eventId"]?.stringValue } == Array(ids.dropFirst()))
            // Then live, and nothing twice.
            let jobId = try await gateway.base.createJob(client, token: token)
            let live = try await second.collect(until: { socketIOEvent($0)?.name == "rebalance:done" })
                .compactMap(socketIOEvent)
            #expect(live.map(\.name) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
            #expect(live.allSatisfy { $0.data?["jobId"]?.stringValue == jobId })
        }
    }

    /// A CONNECT_ERROR would leave the client to retry with the same id forever; it is ignored, and said.
    @Test func lastEventIdNotIssuedIsIgnoredWithAnErrorEvent() async throws {
        let gateway = try await SocketIOTestGateway()
        let token = try await gateway.base.token("gina")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client)
            let answer = try await polling.connect(auth: #"{"token":"\#(token)","lastEventId":"nope"}"#)
            try #require(answer.hasPrefix("40{"), "\(answer)")
            let notice = try await polling.collect(until: { socketIOEvent($0)?.name == "error" }).compactMap(socketIOEvent).last
            #expect(notice?.data?["message"]?.stringValue?.hasPrefix(#"lastEventId "nope" was not issued"#) == true)
            let jobId = try await gateway.base.createJob(client, token: token)
            let live = try await polling.collect(until: { socketIOEvent($0)?.name == "rebalance:done" }).compactMap(socketIOEvent)
            #expect(live.map(\.name) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
            #expect(live.allSatisfy { $0.data?["jobId"]?.stringValue == jobId })
        }
    }

    @Test func clientEventsPingRoomsAndAcks() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("frank")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client, query: "&token=\(token)")
            _ = try await polling.connect()
            try await polling.post(#"42["ping"]"#)
            #expect(socketIOEvent(try await polling.collect(until: { $0.hasPrefix("42") }).last!)?.name == "pong")
            try await polling.post(#"421["join-room","room:lobby"]"#)
            #expect(
                try await polling.collect(until: { $0.hasPrefix("43") }).last
                    == #"431[{"ok":true,"room":"room:lobby"}]"#)
            try await polling.post(#"422["join-room","secret"]"#)
            let refused = try await polling.collect(until: { $0.hasPrefix("43") }).last!
            #expect(refused.hasPrefix(#"432[{"error":"#) && refused.contains(#""ok":false"#))
            try await polling.post(#"42["join-room",42]"#)
            #expect(socketIOEvent(try await polling.collect(until: { $0.hasPrefix("42") }).last!)?.name == "error")
            try await polling.post(#"423["leave-room","room:lobby"]"#)
            #expect(
                try await polling.collect(until: { $0.hasPrefix("43") }).last
                    == #"433[{"ok":true,"room":"room:lobby"}]"#)
        }
    }

    @Test func chatReachesEveryoneInTheRoom() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let alice = try await gateway.base.token("alice")
        let bob = try await gateway.base.token("bob")
        try await gateway.run { client in
            let a = try await PollingClient.open(client, query: "&token=\(alice)")
            let b = try await PollingClient.open(client, query: "&token=\(bob)")
            for polling in [a, b] {
                _ = try await polling.connect()
                try await polling.post(#"421["join-room","room:chat"]"#)
                _ = try await polling.collect(until: { $0.hasPrefix("431") })
            }
            try await a.post(#"42["chat-message",{"roomId":"room:chat","message":"hello"}]"#)
            for polling in [a, b] {
                let event = socketIOEvent(try await polling.collect(until: { $0.hasPrefix("42") }).last!)
                #expect(event?.name == "chat-message")
                #expect(event?.data?["message"]?.stringValue == "hello")
                #expect(event?.data?["userId"]?.stringValue == "alice")
                #expect(event?.data?["roomId"]?.stringValue == "room:chat")
            }
        }
    }

    @Test func oversizedPostIsRefusedAndEndsTheSession() async throws {
        let gateway = try await SocketIOTestGateway(
            configuration: SocketIOConfiguration(maxPayload: 1000), withAgent: false)
        try await gateway.run { client in
            let polling = try await PollingClient.open(client)
            let response = try await polling.post("4" + String(repeating: "x", count: 2000))
            #expect(response.status == .contentTooLarge)
            // The session is closing: the next GET gets the close packet, then it is gone.
            #expect(try await polling.get() == ["1"])
            #expect(gateway.transport.sessionCount == 0)
        }
    }

    @Test func heartbeatTimeoutEndsTheSession() async throws {
        let configuration = SocketIOConfiguration(
            pingInterval: .milliseconds(300), pingTimeout: .seconds(1), sweepInterval: .milliseconds(20))
        let gateway = try await SocketIOTestGateway(configuration: configuration, withAgent: false)
        let token = try await gateway.base.token("gina")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client, query: "&token=\(token)")
            _ = try await polling.connect()
            // The server pings (a held GET is answered with it); no pong follows. On a loaded
            // machine the session may already have timed out before the GET that would carry
            // the ping arrives: that GET is then refused as an unknown session, which is the
            // outcome this test is about, so it ends the loop too.
            var answered: [String] = []
            while !answered.contains("2") {
                let response = try await client.execute(uri: polling.uri, method: .get)
                if response.status == .badRequest { break }
                #expect(response.status == .ok)
                answered += String(buffer: response.body).split(separator: "\u{1e}").map(String.init)
            }
            try await eventually("the session to time out") { gateway.transport.sessionCount == 0 }
            #expect(gateway.router.registry.counts.sessions == 0)
            let after = try await client.execute(uri: polling.uri, method: .get)
            #expect(String(buffer: after.body) == #"{"code":1,"message":"Session ID unknown"}"#)
        }
    }

    @Test func clientThatStopsPollingIsDisconnectedAsSlowConsumer() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("kim")
        try await gateway.run { client in
            let polling = try await PollingClient.open(client, query: "&token=\(token)")
            _ = try await polling.connect()
            // Never polls again: 64 frames wait in the Engine.IO buffer, 1,024 more in the session, then it overflows.
            for index in 0..<1_200 {
                try await gateway.router.emit("notification", data: ["n": .integer(Int64(index))], toUser: "kim")
            }
            try await eventually("the session to be closed as a slow consumer") {
                !gateway.router.registry.hasSessions(ofUser: "kim")
            }
            try await eventually("the slow consumer metric") {
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                return String(buffer: metrics.body).contains(
                    #"switchboard_slow_consumer_disconnects_total{transport="socketio"} 1"#)
            }
            // Dropped without being told (no DISCONNECT, no Engine.IO close, which would keep
            // clients from reconnecting): its next poll finds the session gone, as a client
            // whose server went away does, and it reconnects.
            let next = try await client.execute(uri: polling.uri, method: .get)
            #expect(next.status == .badRequest)
            #expect(String(buffer: next.body) == #"{"code":1,"message":"Session ID unknown"}"#)
            #expect(gateway.transport.sessionCount == 0)
        }
    }

    @Test func manyOpenCloseCyclesLeaveNothing() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("henry")
        try await gateway.run { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let polling = try await PollingClient.open(client, query: "&token=\(token)")
                        _ = try await polling.connect()
                        if index.isMultiple(of: 2) {
                            try await polling.post("41", "1")
                        } else {
                            try await polling.post("1")
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(gateway.transport.sessionCount == 0)
            try await eventually("router sessions closed") { gateway.router.registry.counts.sessions == 0 }
        }
    }
}
