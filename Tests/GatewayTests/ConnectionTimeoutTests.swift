import BrokerTesting
import Foundation
import Gateway
import HummingbirdTesting
import NIOHTTP1
import Testing

/// Connections that hold a descriptor without using it are closed: no first request in time
/// (408), or an HTTP keep-alive connection left idle. Long-lived transports are not affected.
@Suite("Connection timeouts")
struct ConnectionTimeoutTests {
    /// Timeouts short enough for a test, long enough that a loaded machine does not stall a
    /// client between connecting and sending its request for that long (300 ms once did).
    static let short = GatewayConfiguration(
        port: 0, heartbeatInterval: .milliseconds(100), requestHeadTimeout: .seconds(1), idleTimeout: .seconds(1))

    /// Nothing sent at all, a request line only, a head missing its blank line: each held its
    /// connection open indefinitely before.
    @Test(arguments: ["", "GET /health HTTP/1.1\r\n", "GET /health HTTP/1.1\r\nHost: x\r\n"])
    func noCompleteRequestHeadInTimeIsAnswered408AndClosed(_ sent: String) async throws {
        let test = try await TestGateway(configuration: Self.short, withAgent: false)
        try await test.live { client in
            let answer = try await withDeadline("a 408, then the close", within: .seconds(10)) {
                try await RawHTTPExchange.send(sent, port: try #require(client.port))
            }
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(120))")
            #expect(answer.contains(#"{"error":"no complete request in time"}"#))
        }
    }

    /// Graceful shutdown closes a connection that has sent no request (or half a head) at once.
    /// Before, it held the server until that connection's head deadline: 20 s after SIGTERM by
    /// default, here an hour.
    @Test(arguments: ["", "GET /health HTTP/1.1\r\nHost: x\r\n"])
    func shutdownDoesNotWaitForAConnectionWithoutARequest(_ sent: String) async throws {
        let patient = GatewayConfiguration(port: 0, requestHeadTimeout: .seconds(3_600), idleTimeout: .seconds(3_600))
        let test = try await TestGateway(configuration: patient, withAgent: false)
        let connection = try await withDeadline("the server to shut down", within: .seconds(30)) {
            try await test.live { client in
                let connection = try await RawConnection.connect(port: try #require(client.port))
                if !sent.isEmpty { try await connection.send(sent) }
                // The server has the connection (and what was sent) before the test's end shuts it down.
                let answer = try await RawHTTPExchange.send(
                    "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: try #require(client.port))
                #expect(answer.hasPrefix("HTTP/1.1 200"))
                return connection
            }
        }
        let text = try await withDeadline("the connection to be closed", within: .seconds(10)) { try await connection.textWhenClosed() }
        #expect(text.isEmpty, "\(text.prefix(100))")
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterItsAnswer() async throws {
        let test = try await TestGateway(configuration: Self.short, withAgent: false)
        try await test.live { client in
            // Before, the server kept the connection after answering, and this waited forever.
            let answer = try await withDeadline("the answer, then the close", within: .seconds(10)) {
                try await RawHTTPExchange.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", port: try #require(client.port))
            }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(120))")
            #expect(!answer.contains("408"))
        }
    }

    @Test func aLongPollLongerThanTheIdleTimeoutIsAnswered() async throws {
        let gateway = try await SocketIOTestGateway(
            configuration: SocketIOConfiguration(pingInterval: .milliseconds(2_500)), gateway: Self.short, withAgent: false)
        try await gateway.run(.live) { client in
            let port = try #require(client.port)
            let handshake = try await RawHTTPExchange.send(
                "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port)
            let sid = try #require(handshake.split(separator: "\"").dropFirst(3).first)
            // The poll waits for the ping (2.5 s) on a keep-alive connection idle for 1 s: it is
            // answered (a request in progress is not idle), and only then closed.
            let answer = try await withDeadline("the ping, then the close", within: .seconds(10)) {
                try await RawHTTPExchange.send(
                    "GET /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\n\r\n", port: port)
            }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer.prefix(200))")
            #expect(answer.hasSuffix("\r\n\r\n2"), "\(answer.suffix(40))")
        }
    }

    @Test func aWebSocketOutlivesTheRequestTimeouts() async throws {
        let test = try await TestGateway(configuration: Self.short, withAgent: false)
        let token = try await test.token("long-lived")
        try await test.live { client in
            let socket = try await RawWebSocketClient.connect(port: try #require(client.port), path: "/ws?token=\(token)")
            #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
            // Well past both timeouts (1 s), the connection still answers.
            try await Task.sleep(for: .milliseconds(2_500))
            try await socket.send(text: #"{"type":"ping"}"#)
            let answer = try #require(try await socket.nextNonPing())
            #expect(answer.text.contains(#""type":"pong""#))
            #expect(!socket.isClosed)
            await socket.close()
        }
    }

    @Test func anEventStreamOutlivesTheRequestTimeouts() async throws {
        let test = try await TestGateway(configuration: Self.short, withAgent: false)
        let token = try await test.token("streaming")
        try await test.live { client in
            let stream = try await EventStreamClient.connect(port: try #require(client.port), path: "/api/v1/events?token=\(token)")
            #expect(stream.status == .ok)
            try await Task.sleep(for: .milliseconds(2_500))
            // Heartbeats keep coming after both timeouts have passed.
            let record = try await withDeadline("a heartbeat after both timeouts", within: .seconds(10)) { try await stream.next() }
            #expect(record != nil)
            try await Task.sleep(for: .milliseconds(500))
            let later = try await withDeadline("another heartbeat", within: .seconds(10)) { try await stream.next() }
            #expect(later != nil)
            await stream.close()
        }
    }
}
