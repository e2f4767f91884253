import Broker
import BrokerTesting
import Foundation
import Gateway
import HummingbirdTesting
import NIOCore
import Testing

/// How an event stream is paced and framed on the wire: heartbeats that keep proxies from
/// cutting an idle stream, and a response an HTTP/1.0 client can read (SPEC §3.3).
@Suite("Server-Sent Events: heartbeat pacing and HTTP/1.0 framing")
struct EventStreamFramingTests {
    /// The heartbeat interval is the longest silence a stream allows: an event written between
    /// two beats moves the next beat to an interval after it, not to a later tick of a fixed
    /// timer (which left almost two intervals of silence, past what proxies allow).
    @Test func noSilenceLastsLongerThanTheHeartbeatInterval() async throws {
        let interval = Duration.seconds(1)
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, heartbeatInterval: interval), withAgent: false)
        let token = try await test.token("nadia")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("heartbeats around an event", within: .seconds(20)) {
                let stream = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(token)")
                #expect(try await stream.nextEvent()?.event == "connected")
                // Just after a beat, so that the event falls early in the interval.
                #expect(try await stream.next()?.event == ":")
                try await test.router.emit("notification", data: ["text": "between beats"], toUser: "nadia")
                #expect(try await stream.next()?.event == "notification")
                let clock = ContinuousClock()
                var last = clock.now
                for _ in 0..<2 {
                    #expect(try await stream.next()?.event == ":")
                    let gap = clock.now - last
                    last = clock.now
                    // About one interval; a generous bound for a loaded machine, well under the
                    // two intervals of silence the fixed-rate timer allowed.
                    #expect(gap < interval * 1.5, "silence of \(gap) with a heartbeat every \(interval)")
                }
                await stream.close()
            }
        }
    }

    /// HTTP/1.0 has no chunked coding: its client gets a 1.0 response with the records as they
    /// are, no chunk-size lines among them, and the connection closes when the stream ends.
    @Test func http10ClientGetsAnUnchunkedStreamEndedByClose() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("olga")
        let connection = try await test.serving { port in
            try await withDeadline("an HTTP/1.0 stream", within: .seconds(20)) {
                let connection = try await RawConnection.connect(port: port)
                try await connection.send("GET /api/v1/events?token=\(token) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                try await connection.waitFor("event: connected")
                try await test.router.emit("notification", data: ["text": "old client"], toUser: "olga")
                try await connection.waitFor("event: notification")
                return connection
            }
        }
        // Graceful shutdown ended the stream: the server closes the connection.
        let text = try await withDeadline("the connection closed", within: .seconds(20)) {
            try await connection.textWhenClosed()
        }
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0].lowercased()
        let body = parts.dropFirst().joined(separator: "\r\n\r\n")
        #expect(head.hasPrefix("http/1.0 200 ok"), "\(head)")
        #expect(!head.contains("transfer-encoding"), "\(head)")
        #expect(head.contains("connection: close"), "\(head)")
        #expect(head.contains("content-type: text/event-stream"), "\(head)")
        // The records start the body and nothing but records follows (no chunk sizes, no last chunk).
        #expect(body.hasPrefix("retry: 2000\n"), "\(body)")
        #expect(body.contains("event: notification\n"))
        #expect(!body.contains("\r\n"), "\(body)")
    }
}
