import Broker
import BrokerTesting
import Foundation
import MemoryBackend
@testable import Gateway
import HummingbirdTesting
import ServiceLifecycle
import Synchronization
import Testing

/// RFC 6455 as the gateway's own WebSocket handler speaks it, seen frame by frame.
@Suite("WebSocket protocol (RFC 6455) on the gateway's handler")
struct WebSocketProtocolTests {
    static let opText: UInt8 = 0x1, opContinuation: UInt8 = 0x0, opBinary: UInt8 = 0x2
    static let opClose: UInt8 = 0x8, opPing: UInt8 = 0x9, opPong: UInt8 = 0xA

    @Test func fragmentsAreJoinedWhileControlFramesInBetweenAreAnswered() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("frag")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
            try await socket.send(text: #"{"type":"#, fin: false)
            try await socket.send(opcode: Self.opPing, payload: Array("abc".utf8))
            try await socket.send(text: #""ping""#, opcode: Self.opContinuation, fin: false)
            try await socket.send(text: "}", opcode: Self.opContinuation)
            let pong = try #require(try await socket.nextNonPing())
            #expect(pong.opcode == Self.opPong && pong.text == "abc")
            let answer = try #require(try await socket.nextNonPing())
            #expect(answer.opcode == Self.opText && answer.text.contains(#""type":"pong""#))
            await socket.close()
        }
    }

    @Test func fragmentsOverTheLimitClose1009() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("big")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            // Each fragment is within the frame limit; joined they are not.
            let part = String(repeating: "x", count: 40 * 1024)
            try await socket.send(text: part, fin: false)
            try await socket.send(text: part, opcode: Self.opContinuation)
            let close = try #require(try await socket.nextNonPing())
            #expect(close.opcode == Self.opClose && close.closeCode == 1009)
            // The server waits for the client's answer before closing TCP (a close at once would
            // meet the client's frames in flight with a reset); a frame still arriving is ignored.
            try await Task.sleep(for: .milliseconds(300))
            #expect(!socket.isClosed)
            try await socket.send(text: #"{"type":"ping"}"#)
            try await socket.answerClose(code: 1009)
            try await withDeadline("the server to close", within: .seconds(10)) { try await socket.waitUntilClosed() }
            try await eventually("the session to be gone") { test.router.registry.counts.sessions == 0 }
        }
    }

    @Test func aTextMessageThatIsNotUTF8Closes1007() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("bytes")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            // Valid UTF-8 split inside a character across two fragments is fine...
            let euro = Array(#"{"type":"ping","x":"€"}"#.utf8)
            let cut = euro.firstIndex(of: 0xE2)! + 1
            try await socket.send(opcode: Self.opText, fin: false, payload: Array(euro[..<cut]))
            try await socket.send(opcode: Self.opContinuation, payload: Array(euro[cut...]))
            #expect(try await socket.nextNonPing()?.text.contains("pong") == true)
            // ...a lone continuation byte is not.
            try await socket.send(opcode: Self.opText, payload: Array(#"{"type":"ping","x":""#.utf8) + [0xFF, 0x22, 0x7D])
            let close = try #require(try await socket.nextNonPing())
            #expect(close.opcode == Self.opClose && close.closeCode == 1007)
            try await socket.answerClose(code: 1007)
            try await eventually("the session to be gone") { test.router.registry.counts.sessions == 0 }
        }
    }

    @Test func anUnmaskedClientFrameCloses1002() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("bare")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            try await socket.send(opcode: Self.opText, payload: Array(#"{"type":"ping"}"#.utf8), masked: false)
            let close = try #require(try await socket.nextNonPing())
            #expect(close.opcode == Self.opClose && close.closeCode == 1002)
            try await socket.answerClose(code: 1002)
            try await withDeadline("the server to close", within: .seconds(10)) { try await socket.waitUntilClosed() }
        }
    }

    @Test func clientCloseIsAnsweredWithItsCodeThenTheConnectionEnds() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("bye")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            try await socket.send(opcode: Self.opClose, payload: [0x03, 0xE8] + Array("done".utf8))  // 1000
            let close = try #require(try await socket.nextNonPing())
            #expect(close.opcode == Self.opClose && close.closeCode == 1000)
            try await withDeadline("the server to close", within: .seconds(10)) { try await socket.waitUntilClosed() }
            try await eventually("the session to be gone") { test.router.registry.counts.sessions == 0 }
        }
    }

    @Test func gracefulShutdownClosesWith1001() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("leaving")
        // The socket outlives the server: the test's end shuts the application down gracefully.
        let socket = try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            return socket
        }
        let close = try #require(try await socket.nextNonPing())
        #expect(close.opcode == Self.opClose && close.closeCode == 1001)
        try await socket.answerClose(code: 1001)
        try await withDeadline("the server to close", within: .seconds(10)) { try await socket.waitUntilClosed() }
    }

    @Test func aCloseFrameTheClientNeverTakesStillEndsTheConnection() async throws {
        // Neither the queue nor the stall timeout ends this connection: only the close timeout.
        let configuration = GatewayConfiguration(port: 0, outboundQueueCapacity: 100_000, writeStallTimeout: .seconds(600))
        let test = try await TestGateway(configuration: configuration, withAgent: false, outboundByteCapacity: 1 << 30)
        let token = try await test.token("deaf")
        try await test.live { client in
            let stuck = try await StalledWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            try await eventually("the session") { test.router.registry.hasSessions(ofUser: "deaf") }
            #expect(test.gateway.watchdog.count == 1)
            // Fill the socket buffers until the server's writes to it wait.
            let big = JSONValue.string(String(repeating: "z", count: 32 * 1024))
            try await withDeadline("the writes to block", within: .seconds(30)) {
                while !(test.gateway.watchdog.blockedCount > 0) {
                    for _ in 0..<20 { try await test.router.emit("bulk", data: ["blob": big], toUser: "deaf") }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            // The server ends the session: its close frame queues behind what the client never read.
            test.router.registry.closeAll(reason: .shutdown)
            try await eventually("the connection to be closed", within: .seconds(30)) { test.gateway.watchdog.count == 0 }
            await stuck.close()
        }
    }

    @Test func clientThatDropsTheConnectionWithoutACloseFrameLeavesNothingBehind() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("gone")
        try await test.live { client in
            for _ in 0..<5 {
                let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
                _ = try await socket.nextNonPing()
                #expect(test.router.registry.counts.sessions == 1)
                await socket.close()
                try await eventually("the session to be gone", within: .seconds(5)) {
                    test.router.registry.counts.sessions == 0 && test.gateway.watchdog.count == 0
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("GARBAGE\r\n\r\n", "400"),
        ("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n", "431"),
        ("POST /api/v1/agent/rebalance HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"),
    ])
    func aFirstRequestThatDoesNotParseIsAnsweredAndClosed(request: String, status: String) async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.live { client in
            // Before, nothing answered and the connection stayed open: this deadline failed.
            let answer = try await withDeadline("an answer, then the close", within: .seconds(10)) {
                try await RawHTTPExchange.send(request, port: try #require(client.port))
            }
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "\(answer.prefix(120))")
            #expect(answer.contains(#"{"error":"#))
            // The next connection is served as usual.
            let health = try await RawHTTPExchange.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                                        port: try #require(client.port))
            #expect(health.hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test func eventStreamAfterAnotherRequestOnTheConnectionIsSentToAFreshOne() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("later")
        try await test.live { client in
            let answer = try await withDeadline("both answers", within: .seconds(10)) {
                try await RawHTTPExchange.send(
                    "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/v1/events?token=\(token) HTTP/1.1\r\nHost: x\r\n\r\n",
                    port: try #require(client.port))
            }
            let heads = answer.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(heads.count == 2)
            #expect(heads.first?.hasPrefix("200") == true)
            #expect(heads.last?.hasPrefix("307") == true)
            #expect(heads.last?.lowercased().contains("location: /api/v1/events?token=\(token.lowercased())") == true)
            #expect(test.router.registry.counts.sessions == 0)
        }
    }

    /// RFC 6455 §7.4: codes that may not be sent, or a 1-byte payload, are answered 1002; a
    /// reason not in UTF-8, 1007; a valid code is echoed. Before, every code was echoed, so the
    /// server itself sent codes such as 1005 that must never be on the wire.
    @Test(arguments: [
        ([UInt8]([0x03, 0xE7]), UInt16(1002)),  // 999
        ([0x03, 0xED], 1002),  // 1005
        ([0x03, 0xEE], 1002),  // 1006
        ([0x13, 0x88], 1002),  // 5000
        ([0x03], 1002),  // one byte
        ([0x03, 0xE8, 0xFF, 0xFE], 1007),  // 1000, reason not UTF-8
        ([0x03, 0xE8, 0x6F, 0x6B], 1000),  // 1000 "ok"
        ([0x0B, 0xB8], 3000),
    ] as [([UInt8], UInt16)])
    func aClientsCloseFrameIsAnsweredAsTheRFCSays(payload: [UInt8], answer: UInt16) async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("closer")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            try await socket.send(opcode: Self.opClose, payload: payload)
            let close = try #require(try await withDeadline("the answer", within: .seconds(10)) { try await socket.nextNonPing() })
            #expect(close.opcode == Self.opClose && close.closeCode == answer, "\(close)")
            await socket.close()
        }
    }

    /// No extension is negotiated, so a frame with a reserved bit set fails the connection
    /// (RFC 6455 §5.2); before, it was read as if the bit were clear.
    @Test(arguments: [UInt8(0x40), 0x20, 0x10])
    func reservedBitsClose1002(bit: UInt8) async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("reserved")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            _ = try await socket.nextNonPing()
            try await socket.send(text: #"{"type":"ping"}"#, opcode: Self.opText | bit)
            let close = try #require(try await withDeadline("the close", within: .seconds(10)) { try await socket.nextNonPing() })
            #expect(close.opcode == Self.opClose && close.closeCode == 1002, "\(close)")
            await socket.close()
        }
    }

    /// RFC 6455 §4.4: another version gets 426 and the version the server speaks; a handshake
    /// without key or version, 400. Before, the connection was closed without an answer.
    @Test(arguments: [
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "426"),
        ("Sec-WebSocket-Version: 13\r\n", "400"),
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "400"),
    ])
    func aMalformedHandshakeIsAnswered(headers: String, status: String) async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("old-client")
        try await test.live { client in
            let answer = try await withDeadline("the answer", within: .seconds(10)) {
                try await RawHTTPExchange.send(
                    "GET /ws?token=\(token) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\(headers)\r\n",
                    port: try #require(client.port))
            }
            #expect(answer.hasPrefix("HTTP/1.1 \(status)"), "\(answer.prefix(200))")
            #expect(answer.lowercased().contains("sec-websocket-version: 13"))
            #expect(answer.contains(#"{"error":"#))
        }
    }

    /// Opened while the backend is away, the connection gets its replay once the backend is back.
    @Test func aSessionOpenedWhileTheBackendIsAwayGetsItsReplayWhenItReturns() async throws {
        let outage = OutageBroker(base: MemoryBroker())
        let test = try await TestGateway(withAgent: false, broker: outage)
        let token = try await test.token("later")
        try await test.live { client in
            try await test.router.emit("note", data: ["n": 1], toUser: "later", durable: true)
            outage.setDown(true)
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
            outage.setDown(false)
            let replayed = try #require(try await withDeadline("the replay", within: .seconds(10)) { try await socket.nextNonPing() })
            #expect(replayed.text.contains(#""type":"note""#) && replayed.text.contains(#""n":1"#), "\(replayed.text)")
            await socket.close()
        }
    }

    @Test func upgradeToAnUnknownPathIsRefusedWith404() async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.live { client in
            await #expect {
                _ = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/nowhere")
            } throws: { error in
                guard case RawWebSocketClient.RawClientError.notUpgraded(let head) = error else { return false }
                return head.hasPrefix("HTTP/1.1 404") && head.lowercased().contains("application/json")
            }
        }
    }

    @Test func connectionWorkRunsAtMostTheLimitAtOnce() async throws {
        let tasks = ConnectionTasks(limit: 3)
        let counts = Mutex((running: 0, most: 0, done: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await tasks.run() }
            for _ in 0..<20 {
                let spawned = tasks.spawn {
                    counts.withLock { $0.running += 1; $0.most = max($0.most, $0.running) }
                    try? await Task.sleep(for: .milliseconds(5))
                    counts.withLock { $0.running -= 1; $0.done += 1 }
                }
                #expect(spawned)
            }
            try await eventually("all work done") { counts.withLock { $0.done } == 20 }
            group.cancelAll()
        }
        let most = counts.withLock { $0.most }
        #expect(most >= 1 && most <= 3)
    }
}
