import Broker
import Foundation
import NIOCore

/// The JSON text frames the plain WebSocket transport sends (SPEC §3.2), written by hand so an
/// event's payload, encoded once, is spliced into every connection's frame unchanged.
enum ServerFrame {
    /// `{"type":...,"payload":...,"eventId":...,"ts":...}`; `payload` must be JSON text.
    static func event(type: String, payload: String, eventId: String?, ts: String) -> String {
        var frame = #"{"type":"# + JSONText.quoted(type) + #","payload":"# + payload
        if let eventId { frame += #","eventId":"# + JSONText.quoted(eventId) }
        frame += #","ts":"# + JSONText.quoted(ts) + "}"
        return frame
    }

    /// ``event(type:payload:eventId:ts:)`` for `event`, written into `buffer` without making
    /// the frame as a string first: the fan-out's per-message path.
    static func writeEvent(_ event: RoutedEvent, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"type":"#)
        JSONText.writeQuoted(event.name, into: &buffer)
        buffer.writeStaticString(#","payload":"#)
        buffer.writeString(event.dataJSON)
        if let eventId = event.eventId {
            buffer.writeStaticString(#","eventId":""#)
            buffer.writeDecimal(eventId.value)
            buffer.writeStaticString("\"")
        }
        buffer.writeStaticString(#","ts":""#)
        let timestamp = event.timestamp
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { timestamp.writeISO8601(into: $0) }
        buffer.writeStaticString("\"}")
    }

    /// Sent once when the connection opens.
    static func connected(userId: String, ts: String) -> String {
        event(type: "connected", payload: #"{"userId":"# + JSONText.quoted(userId) + "}", eventId: nil, ts: ts)
    }

    /// The answer to `{"type":"ping"}`.
    static func pong(at date: Date = Date()) -> String {
        #"{"type":"pong","timestamp":"# + String(Int64(date.timeIntervalSince1970 * 1000)) + "}"
    }

    /// A refusal that leaves the connection open.
    static func error(_ message: String, ts: String) -> String {
        event(type: "error", payload: #"{"message":"# + JSONText.quoted(message) + "}", eventId: nil, ts: ts)
    }

    /// Confirms a `subscribe`.
    static func subscribed(jobId: String, status: String, ts: String) -> String {
        let payload = #"{"jobId":"# + JSONText.quoted(jobId) + #","status":"# + JSONText.quoted(status) + "}"
        return event(type: "subscribed", payload: payload, eventId: nil, ts: ts)
    }
}

/// Server-Sent Events framing (SPEC §3.3, WHATWG HTML §9.2).
enum SSEFormat {
    /// `id:`, `event:` and one `data:` line per line of `data`, then a blank line.
    static func event(id: String?, name: String, data: String) -> String {
        var text = ""
        if let id { text += "id: \(Self.singleLine(id))\n" }
        text += "event: \(Self.singleLine(name))\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line)\n"
        }
        return text + "\n"
    }

    /// A comment line: ignored by clients, keeps proxies from timing the stream out.
    static func heartbeat() -> String { ": heartbeat\n\n" }

    /// A comment for whoever reads the raw stream (EventSource ignores it); one line.
    static func comment(_ text: String) -> String {
        ": " + String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 }) + "\n\n"
    }

    /// Tells `EventSource` how long to wait before reconnecting.
    static func retry(milliseconds: Int) -> String { "retry: \(milliseconds)\n\n" }

    /// Field values may not contain line breaks; they would end the field early.
    private static func singleLine(_ value: String) -> String {
        value.contains(where: \.isNewline) ? value.filter { !$0.isNewline } : value
    }
}

extension ByteBuffer {
    /// Writes `value` in decimal ASCII, without making a string.
    fileprivate mutating func writeDecimal(_ value: Int64) {
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        let count = withUnsafeMutableBytes(of: &digits) { raw -> Int in
            var index = raw.count
            repeat {
                index -= 1
                raw[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            return raw.count - index
        }
        if value < 0 { writeInteger(UInt8(ascii: "-")) }
        withUnsafeBytes(of: &digits) { raw in _ = writeBytes(UnsafeRawBufferPointer(rebasing: raw[(raw.count - count)...])) }
    }
}
