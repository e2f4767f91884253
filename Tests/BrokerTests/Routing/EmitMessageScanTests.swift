@testable import Broker
import Testing

@Suite("Emit messages are validated without building their data")
struct EmitMessageScanTests {
    /// Every input: the scanner accepts exactly what the parser accepts as an object, and
    /// finds the same members.
    static let corpus: [String] = [
        "{}", " { } ", #"{"a":1}"#, #"{"a":-0.5e+3,"b":[true,false,null],"c":{"d":"\u00e9\n"}}"#,
        #"{"k\"ey":"v","k\u0041":[[],{}]}"#, #"{"a":1,"a":2}"#, "{\"a\":\"é😀\"}",
        // Not objects, or not JSON.
        "", "[]", "42", #""s""#, "nope", "{", "}", #"{"a"}"#, #"{"a":}"#, #"{"a":1,}"#, #"{"a":01}"#,
        #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":1e}"#, #"{"a":-}"#, #"{"a":tru}"#, #"{"a":nulll}"#, #"{"a":"\x"}"#,
        #"{"a":"\u12"}"#, "{\"a\":\"\u{01}\"}", #"{"a":[1 2]}"#, #"{"a":{"b" 1}}"#, #"{"a":1} x"#, #"{a:1}"#,
        #"{"a":"unterminated}"#, String(repeating: "[", count: 70) + String(repeating: "]", count: 70),
        "{\"a\":" + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}",
        "{\"a\":" + String(repeating: "[", count: 60) + String(repeating: "]", count: 60) + "}",
        // Strings with unpaired surrogates (read as U+FFFD), in keys and values.
        #"{"a":"\ud800"}"#, #"{"\udc00":1}"#, #"{"a":["\ud83d\ude00", "\ud83dx"]}"#, #"{"a":"\u00e9\ud83d\ude00"}"#,
    ]

    /// Bytes that are not UTF-8 in strings (read as U+FFFD).
    static let invalidUTF8: [[UInt8]] = [
        Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8),
        Array(#"{""#.utf8) + [0xC3] + Array(#"":1}"#.utf8),
        Array(#"{"a":{"b":""#.utf8) + [0xE2, 0x82] + Array(#""}}"#.utf8),
        Array(#"{"a":"é"}"#.utf8),
    ]

    @Test("the scanner agrees with the parser on what is an object and on its members")
    func agreesWithParser() throws {
        for bytes in Self.corpus.map({ Array($0.utf8) }) + Self.invalidUTF8 {
            let text = String(decoding: bytes, as: UTF8.self)
            let parsed = try? JSONValue.parse(utf8: bytes)
            let scanned = try? bytes.withUnsafeBufferPointer { try JSONScanner.members(ofObject: $0) }
            guard case .object(let object)? = parsed else {
                #expect(scanned == nil, "accepted \(text)")
                continue
            }
            guard let scanned else {
                Issue.record("refused the object \(text)")
                continue
            }
            var last: [String: JSONValue] = [:]
            for member in scanned {
                last[member.key] = try JSONValue.parse(utf8: bytes[member.value])
            }
            #expect(last == object, "\(text)")
        }
    }

    @Test("bytes that are not UTF-8 reach the frame as U+FFFD: a text frame must be UTF-8")
    func invalidUTF8InDataIsReplaced() throws {
        let message = Array(#"{"userId":"u","event":"e","data":{"t":"a"#.utf8) + [0xFF] + Array(#"\ud800"}}"#.utf8)
        let event = try RoutedEvent(emitMessage: message)
        #expect(event.dataJSON == #"{"t":"a\#u{FFFD}\ud800"}"#)
        #expect(event.data == ["t": "a\u{FFFD}\u{FFFD}"])
    }

    @Test("data keeps the text it arrived as; other fields are read as before")
    func dataPassesThrough() throws {
        let message = #"{ "data" : {"b": [1, 2.50], "a":"\u00e9"} , "event":"n\u0061me", "userId":"al\"ice", "eventId": 12 }"#
        let event = try RoutedEvent(emitMessage: Array(message.utf8))
        #expect(event.dataJSON == #"{"b": [1, 2.50], "a":"\u00e9"}"#)
        #expect(event.data == ["a": "é", "b": [1, 2.5]])
        #expect(event.name == "name" && event.userId == #"al"ice"# && event.eventId == EventID(12))
        // The logged form splices the same text back, so a round trip changes nothing.
        #expect(try RoutedEvent(emitMessage: event.emitMessage) == event)
        for bad in [#"{"event":"e","userId":"a","data":{"x":}}"#, #"{"event":"e","userId":"a","data":[1,]}"#, "42", "nope"] {
            #expect(throws: EmitMessageError.self, "\(bad)") { try RoutedEvent(emitMessage: Array(bad.utf8)) }
        }
        #expect(throws: EmitMessageError("not a JSON object")) { try RoutedEvent(emitMessage: Array("[1]".utf8)) }
        #expect(throws: EmitMessageError("not JSON")) { try RoutedEvent(emitMessage: Array("{nope".utf8)) }
    }
}
