import Broker
import BrokerTesting
import Foundation
import Gateway
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOCore
import Testing

/// Reads a test client's WebSocket messages as Engine.IO text packets.
struct PacketReader {
    var iterator: WebSocketInboundMessageStream.AsyncIterator

    init(_ inbound: WebSocketInboundStream) {
        iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
    }

    mutating func next() async throws -> String {
        guard let message = try await iterator.next() else { throw FrameReaderError.closed }
        guard case .text(let text) = message else { throw FrameReaderError.notText }
        return text
    }

    /// The next packet that is not a ping.
    mutating func nextNonPing() async throws -> String {
        while true {
            let packet = try await next()
            if packet != "2" { return packet }
        }
    }
}

@Suite("Socket.IO over WebSocket")
struct SocketIOWebSocketTests {
    @Test func webSocketOnlySessionReceivesJobEvents() async throws {
        let gateway = try await SocketIOTestGateway()
        let token = try await gateway.base.token("ivy")
        try await gateway.run(.live) { client in
            _ = try await withDeadline("a job's events over a Socket.IO WebSocket", within: .seconds(20)) {
                try await client.ws("/socket.io/?EIO=4&transport=websocket", logger: TestGateway.logger) {
                    inbound, outbound, _ in
                    var packets = PacketReader(inbound)
                    let open = try await packets.next()
                    #expect(open.hasPrefix(#"0{"sid":""#) && open.contains(#""upgrades":[]"#))
                    try await outbound.write(.text(#"40{"token":"Bearer \#(token)"}"#))
                    #expect(try await packets.nextNonPing().hasPrefix(#"40{"sid":""#))
                    let jobId = try await gateway.base.createJob(client, token: token)
                    var names: [String] = []
                    while names.last != "rebalance:done" {
                        guard let event = socketIOEvent(try await packets.nextNonPing()) else { continue }
                        #expect(event.data?["jobId"]?.stringValue == jobId)
                        names.append(event.name)
                    }
                    #expect(names == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                    try await outbound.write(.text(#"421["join-room","room:ws"]"#))
                    #expect(try await packets.nextNonPing() == #"431[{"ok":true,"room":"room:ws"}]"#)
                    try await outbound.write(.text("41"))
                    try await outbound.write(.text("1"))
                }
            }
            try await eventually("the session to be forgotten") { gateway.transport.sessionCount == 0 }
            #expect(gateway.router.registry.counts.sessions == 0)
        }
    }

    @Test func clientThatStopsReadingItsWebSocketIsDisconnectedAsSlowConsumer() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        let token = try await gateway.base.token("rex")
        try await gateway.run(.live) { client in
            let port = try #require(client.port)
            // Connects the namespace, then never reads: the socket buffers fill, the writer blocks,
            // the event pump waits, the router session overflows.
            let stalled = try await StalledWebSocketClient.connect(
                port: port, path: "/socket.io/?EIO=4&transport=websocket&token=\(token)")
            try await stalled.send(text: "40")
            try await eventually("the namespace connection") { gateway.router.registry.hasSessions(ofUser: "rex") }
            let big = JSONValue.string(String(repeating: "z", count: 32 * 1024))
            try await withDeadline("the slow client to be cut off", within: .seconds(60)) {
                var sent = 0
                while gateway.router.registry.hasSessions(ofUser: "rex"), sent <= 5_000 {
                    try await gateway.router.emit("bulk", data: ["blob": big], toUser: "rex")
                    sent += 1
                    if sent.isMultiple(of: 50) { try await Task.sleep(for: .milliseconds(5)) }
                }
            }
            try await eventually("the slow consumer metric") {
                let metrics = try await client.execute(uri: "/metrics", method: .get)
                return String(buffer: metrics.body).contains(
                    #"switchboard_slow_consumer_disconnects_total{transport="socketio"} 1"#)
            }
            try await eventually("the Engine.IO session to be forgotten") { gateway.transport.sessionCount == 0 }
            await stalled.close()
        }
    }

    @Test func badTokenOverWebSocketGetsConnectError() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        try await gateway.run(.live) { client in
            _ = try await withDeadline("the connect error", within: .seconds(10)) {
                try await client.ws("/socket.io/?EIO=4&transport=websocket&token=nope", logger: TestGateway.logger) {
                    inbound, outbound, _ in
                    var packets = PacketReader(inbound)
                    _ = try await packets.next()
                    try await outbound.write(.text("40"))
                    #expect(try await packets.nextNonPing() == #"44{"message":"invalid token: not a JWT"}"#)
                    try await outbound.write(.text("1"))
                }
            }
            #expect(gateway.router.registry.counts.sessions == 0)
        }
    }

    @Test func upgradeFromPollingMovesTheSessionToTheWebSocket() async throws {
        let gateway = try await SocketIOTestGateway()
        let token = try await gateway.base.token("jack")
        try await gateway.run(.live) { client in
            let polling = try await PollingClient.open(client, query: "&token=\(token)")
            #expect(try await polling.connect().hasPrefix("40{"))
            _ = try await withDeadline("the upgrade", within: .seconds(20)) {
                try await client.ws(
                    "/socket.io/?EIO=4&transport=websocket&sid=\(polling.sid)", logger: TestGateway.logger
                ) {
                    inbound, outbound, _ in
                    var packets = PacketReader(inbound)
                    try await outbound.write(.text("2probe"))
                    #expect(try await packets.next() == "3probe")
                    try await outbound.write(.text("5"))
                    // Polling is over for this sid once the server has read the "5" (until then a
                    // poll during the upgrade is answered at once with a noop).
                    try await eventually("polling to be refused for this sid") {
                        try await client.execute(uri: polling.uri, method: .get).status == .badRequest
                    }
                    let jobId = try await gateway.base.createJob(client, token: token)
                    var names: [String] = []
                    while names.last != "rebalance:done" {
                        guard let event = socketIOEvent(try await packets.nextNonPing()) else { continue }
                        #expect(event.data?["jobId"]?.stringValue == jobId)
                        names.append(event.name)
                    }
                    #expect(names == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                    try await outbound.write(.text(#"42["ping"]"#))
                    #expect(socketIOEvent(try await packets.nextNonPing())?.name == "pong")
                }
            }
            try await eventually("the session to end with its WebSocket") { gateway.transport.sessionCount == 0 }
        }
    }

    @Test func unknownSidIsNotUpgraded() async throws {
        let gateway = try await SocketIOTestGateway(withAgent: false)
        _ = try await gateway.run(.live) { client in
            await #expect(throws: WebSocketClientError.webSocketUpgradeFailed) {
                try await client.ws("/socket.io/?EIO=4&transport=websocket&sid=unknown", logger: TestGateway.logger) {
                    _, _, _ in
                    Issue.record("upgraded an unknown sid")
                }
            }
        }
    }
}
