import Broker
import BrokerTesting
import Gateway
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

/// A WebSocket upgrade that is not the first request of its keep-alive connection, as reverse
/// proxies that pool connections to the gateway send them (SPEC §3.1, §3.2): upgraded in place,
/// since WebSocket clients follow no redirect.
@Suite("WebSocket upgrades on a reused keep-alive connection")
struct LateWebSocketUpgradeTests {
    @Test func upgradeAfterAnotherRequestOpensASession() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("pablo")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("a late upgrade", within: .seconds(20)) {
                let earlier = NIOLockedValueBox([String]())
                let socket = try await RawWebSocketClient.connect(
                    port: port, path: "/ws?token=\(token)", after: ["/health", "/health"], earlierResponses: earlier)
                // The connection stayed open after the earlier answers: they were plain ones.
                #expect(earlier.withLockedValue { $0 }.allSatisfy { $0.hasPrefix("HTTP/1.1 200") })
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
                try await socket.send(text: #"{"type":"ping"}"#)
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"pong""#) == true)
                try await test.router.emit("notification", data: ["text": "through a proxy"], toUser: "pablo")
                #expect(try await socket.nextNonPing()?.text.contains("through a proxy") == true)
                await socket.close()
            }
        }
    }

    /// The keep-alive idle timeout was the HTTP handlers': it leaves with them. The upgrade is
    /// pipelined behind the first request, so that a loaded machine cannot let the 300 ms pass
    /// between the two (the server would rightly close the idle connection before the upgrade).
    @Test func lateUpgradedWebSocketOutlivesTheIdleTimeout() async throws {
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, idleTimeout: .milliseconds(300)), withAgent: false)
        let token = try await test.token("rosa")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("a late upgrade past the idle timeout", within: .seconds(20)) {
                let socket = try await RawWebSocketClient.connect(
                    port: port, path: "/ws?token=\(token)", after: ["/health"], pipelined: true)
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
                // Well past the idle timeout (300 ms), the connection still answers.
                try await Task.sleep(for: .seconds(1))
                try await socket.send(text: #"{"type":"ping"}"#)
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"pong""#) == true)
                #expect(!socket.isClosed)
                await socket.close()
            }
        }
    }

    /// The upgrade sent before the previous answer came: the `101` follows that whole answer.
    @Test func pipelinedUpgradeWaitsForThePreviousResponse() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("quinn")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("a pipelined upgrade", within: .seconds(20)) {
                let earlier = NIOLockedValueBox([String]())
                let socket = try await RawWebSocketClient.connect(
                    port: port, path: "/ws?token=\(token)", after: ["/health"], pipelined: true, earlierResponses: earlier)
                #expect(earlier.withLockedValue { $0 }.map { $0.hasPrefix("HTTP/1.1 200") } == [true])
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"connected""#) == true)
                try await socket.send(text: #"{"type":"ping"}"#)
                #expect(try await socket.nextNonPing()?.text.contains(#""type":"pong""#) == true)
                await socket.close()
            }
        }
    }

    /// Refused as a first request's upgrade is: its status and JSON, then the connection closes
    /// (no redirect repeating the token).
    @Test func refusedLateUpgradeGetsItsErrorNotARedirect() async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.live { client in
            let port = try #require(client.port)
            let text = try await withDeadline("a refused late upgrade", within: .seconds(20)) {
                let connection = try await RawConnection.connect(port: port)
                try await connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                try await connection.waitFor("HTTP/1.1 200")
                try await connection.send(
                    "GET /ws?token=not-a-token HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                return try await connection.textWhenClosed()
            }
            #expect(text.contains("HTTP/1.1 401"), "\(text)")
            #expect(text.contains(#"{"error":"invalid token: not a JWT"}"#), "\(text)")
            #expect(!text.contains("307"), "\(text)")
        }
    }
}
