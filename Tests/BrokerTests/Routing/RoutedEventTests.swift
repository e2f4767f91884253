import Broker
import Testing

@Suite("Events on the wire (no I/O)")
struct RoutedEventTests {
    @Test("emit messages: userId or room, event, data; eventId and timestamp when numbered")
    func wire() throws {
        let user = try RoutedEvent(emitMessage: Array(#"{"userId":"alice","event":"notification","data":{"x":1}}"#.utf8))
        #expect(user.room == "user:alice" && user.userId == "alice" && user.name == "notification" && user.data == ["x": 1])
        let room = try RoutedEvent(emitMessage: Array(#"{"room":"room:lobby","event":"chat-message"}"#.utf8))
        #expect(room.room == "room:lobby" && room.userId == nil && room.data == [:])
        let numbered = RoutedEvent(
            name: "rebalance:done", room: "user:bob", data: ["jobId": "1-a", "eventId": "17"], eventId: EventID(17),
            timestamp: Timestamp(milliseconds: 1_762_857_045_000))
        let again = try RoutedEvent(emitMessage: numbered.emitMessage)
        #expect(again == numbered)
        #expect(String(decoding: numbered.emitMessage, as: UTF8.self)
            == #"{"data":{"eventId":"17","jobId":"1-a"},"event":"rebalance:done","eventId":"17","timestamp":"2025-11-11T10:30:45.000Z","userId":"bob"}"#)
        // Another service's numeric user id (a database id) names the user of its decimal text.
        let numeric = try RoutedEvent(emitMessage: Array(#"{"userId":42,"event":"notification"}"#.utf8))
        #expect(numeric.room == "user:42" && numeric.userId == "42")
        for bad in ["", "[]", #"{"userId":"a"}"#, #"{"event":"e"}"#, #"{"event":"","userId":"a"}"#,
                    #"{"event":"e","userId":true}"#, #"{"event":"e","userId":1.5}"#] {
            #expect(throws: EmitMessageError.self, "\(bad)") { try RoutedEvent(emitMessage: Array(bad.utf8)) }
        }
        // Another service's eventId (not decimal, negative, or from the far future) is not one
        // of ours: the event is delivered, unnumbered.
        for foreign in [#""8f14e45f-ceea""#, "-5", "9000000000000000000", #""9000000000000000000""#, "1.5", "true"] {
            let event = try RoutedEvent(emitMessage: Array(#"{"event":"e","userId":"a","eventId":\#(foreign)}"#.utf8))
            #expect(event.eventId == nil && event.name == "e", "\(foreign)")
        }
        let current = EventID.next(after: nil, now: .now())
        #expect(try RoutedEvent(emitMessage: Array(#"{"event":"e","userId":"a","eventId":"\#(current)"}"#.utf8)).eventId == current)
    }

    @Test("JSON text: compact, sorted keys, escaped strings, round trips")
    func json() throws {
        let value: JSONValue = [
            "s": "quote\" back\\ nl\n tab\t ctl\u{01} é 😀", "i": -42, "d": 1.5, "b": true, "n": nil,
            "a": [1, "two", [:]], "o": ["z": 1, "a": 2],
        ]
        #expect(value.jsonText.hasPrefix(#"{"a":[1,"two",{}],"b":true,"d":1.5,"i":-42,"n":null,"o":{"a":2,"z":1},"s":"quote\" back\\ nl\n tab\t ctl\u0001 é 😀"}"#))
        #expect(try JSONValue(parsing: value.jsonBytes) == value)
        #expect(JSONValue.number(.nan).jsonText == "null")
    }
}
