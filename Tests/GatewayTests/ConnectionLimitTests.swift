import BrokerTesting
import Foundation
import Gateway
import HummingbirdTesting
import Testing

/// At ``GatewayConfiguration/maxConnections`` the server stops accepting: a new connection
/// waits in the listen backlog, unanswered, until another closes; then it is served.
@Suite("Connection limit")
struct ConnectionLimitTests {
    @Test func aConnectionBeyondTheLimitWaitsUntilAnotherCloses() async throws {
        let test = try await TestGateway(configuration: GatewayConfiguration(port: 0, maxConnections: 2), withAgent: false)
        #expect(test.gateway.connectionLimit == 2)
        let token = try await test.token("lim")
        try await test.serving { port in
            let upgrade =
                "GET /ws?token=\(token) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            var open: [RawConnection] = []
            for _ in 0..<2 {
                let connection = try await RawConnection.connect(port: port)
                try await connection.send(upgrade)
                try await withDeadline("an upgrade", within: .seconds(10)) { try await connection.waitFor("\"type\":\"connected\"") }
                open.append(connection)
            }
            // The kernel completes the handshake; the server does not take the connection yet.
            let waiting = try await RawConnection.connect(port: port)
            try await waiting.send(upgrade)
            try await Task.sleep(for: .milliseconds(300))
            #expect(waiting.text.isEmpty, "answered beyond the limit: \(waiting.text.prefix(80))")
            await open.removeFirst().close()
            try await withDeadline("the waiting upgrade", within: .seconds(10)) { try await waiting.waitFor("\"type\":\"connected\"") }
            await waiting.close()
            for connection in open { await connection.close() }
        }
    }

    @Test func theDefaultLimitFollowsTheOpenFileLimit() async throws {
        let test = try await TestGateway(withAgent: false)
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(test.gateway.connectionLimit == max(16, Int(clamping: limit.rlim_cur) - 128))
    }
}
