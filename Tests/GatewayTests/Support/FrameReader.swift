import Broker
import Foundation
import HummingbirdWSClient

/// Reads a test client's WebSocket messages as JSON frames.
struct FrameReader {
    var iterator: WebSocketInboundMessageStream.AsyncIterator

    init(_ inbound: WebSocketInboundStream) {
        iterator = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
    }

    /// The next frame as JSON; throws if the connection ends first.
    mutating func next() async throws -> JSONValue {
        guard let message = try await iterator.next() else { throw FrameReaderError.closed }
        guard case .text(let text) = message else { throw FrameReaderError.notText }
        return try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// The next frame whose `type` is not `pong`/`subscribed`/`error` (i.e. an event).
    mutating func nextEvent() async throws -> JSONValue {
        while true {
            let frame = try await next()
            if let type = frame["type"]?.stringValue, type.contains(":") { return frame }
        }
    }

    /// Reads until the server closes; returns how many messages came meanwhile.
    mutating func drain() async throws -> Int {
        var count = 0
        while try await iterator.next() != nil { count += 1 }
        return count
    }
}

enum FrameReaderError: Error { case closed, notText }
