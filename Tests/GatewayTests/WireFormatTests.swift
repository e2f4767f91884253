import Broker
import Foundation
@testable import Gateway
import NIOCore
import Testing

@Suite("Wire formats: client frames, server frames, SSE")
struct WireFormatTests {
    @Test func clientFramesParse() throws {
        #expect(try ClientFrame.parse(#"{"type":"ping"}"#) == .ping)
        #expect(try ClientFrame.parse(#"{"type":"subscribe","jobId":"17-abc"}"#) == .subscribe(jobId: "17-abc"))
        // As JSON.parse: a duplicated member keeps its last value.
        #expect(try ClientFrame.parse(#"{"type":"subscribe","jobId":"1-a","type":"ping"}"#) == .ping)
    }

    @Test(arguments: [
        ("not json", "frame is not valid JSON"),
        ("[1,2]", "frame must be a JSON object"),
        (#"{"kind":"ping"}"#, "frame has no string \"type\""),
        (#"{"type":7}"#, "frame has no string \"type\""),
        (#"{"type":"subscribe"}"#, "subscribe needs a string \"jobId\""),
        (#"{"type":"subscribe","jobId":""}"#, "subscribe needs a string \"jobId\""),
        (#"{"type":"dance"}"#, "unknown frame type \"dance\""),
    ])
    func malformedClientFramesAreExplained(_ text: String, _ reason: String) {
        #expect(throws: ClientFrame.Malformed(reason)) { try ClientFrame.parse(text) }
    }

    @Test func eventFrameSplicesPayload() throws {
        let frame = ServerFrame.event(
            type: "rebalance:done", payload: #"{"jobId":"1-a","status":"done"}"#, eventId: "42",
            ts: "2025-11-11T10:30:00.000Z")
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(frame.utf8))
        #expect(value["type"] == "rebalance:done")
        #expect(value["payload"]?["status"] == "done")
        #expect(value["eventId"] == "42")
        #expect(value["ts"] == "2025-11-11T10:30:00.000Z")
    }

    /// The fan-out writes event frames straight into a buffer; the bytes are the string form's.
    @Test(arguments: [
        ("rebalance:done", Optional(EventID(1_795_418_512_115_000)), Int64(1_795_418_512_115)),
        ("note", nil, 0), ("odd \"name\"\n", EventID(0), -1), ("ünïcode", EventID(-42), 253_402_300_799_999),
        ("big", EventID(Int64.max), 1_700_000_000_000),
    ])
    func eventFrameWrittenInPlaceEqualsTheStringForm(_ name: String, _ eventId: EventID?, _ milliseconds: Int64) throws {
        let event = RoutedEvent(
            name: name, room: "user:u", data: ["jobId": "1-a", "n": 1.5, "s": "q\"x"], eventId: eventId,
            timestamp: Timestamp(milliseconds: milliseconds))
        var buffer = ByteBuffer()
        ServerFrame.writeEvent(event, into: &buffer)
        let expected = ServerFrame.event(
            type: event.name, payload: event.dataJSON, eventId: event.eventId?.description, ts: event.timestamp.iso8601)
        #expect(String(buffer: buffer) == expected)
    }

    @Test func quotingEscapesWhatJSONRequires() throws {
        let nasty = "a\"b\\c\nd\u{1}e✓"
        let frame = ServerFrame.connected(userId: nasty, ts: "t")
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(frame.utf8))
        #expect(value["payload"]?["userId"]?.stringValue == nasty)
    }

    @Test func pongCarriesMilliseconds() throws {
        let value = try JSONDecoder().decode(
            JSONValue.self, from: Data(ServerFrame.pong(at: Date(timeIntervalSince1970: 1.5)).utf8))
        #expect(value["type"] == "pong")
        #expect(value["timestamp"] == .integer(1500))
    }

    @Test func sseRecordHasIdEventAndData() {
        #expect(
            SSEFormat.event(id: "7", name: "rebalance:processing", data: #"{"a":1}"#)
                == "id: 7\nevent: rebalance:processing\ndata: {\"a\":1}\n\n")
        #expect(SSEFormat.event(id: nil, name: "x", data: "l1\nl2") == "event: x\ndata: l1\ndata: l2\n\n")
        #expect(SSEFormat.event(id: "1\n2", name: "a\nb", data: "") == "id: 12\nevent: ab\ndata: \n\n")
        #expect(SSEFormat.heartbeat().hasPrefix(":"))
    }
}
