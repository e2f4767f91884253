import Testing

@testable import Broker

extension SocketIOTests {
    @Suite("JSON on UTF-8 bytes")
    struct JSONUTF8Tests {
        private func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
            try JSONValue.parse(utf8: Array(text.utf8))
        }

        @Test func parsesEveryKindOfValue() throws {
            let value = try parse(
                #" { "a" : [1, -2, 3.5, -0.25e2, 1E3, true, false, null], "b": {"c": "d"}, "e": "" } "#)
            #expect(
                value == [
                    "a": [1, -2, 3.5, -25.0, 1000.0, true, false, nil],
                    "b": ["c": "d"],
                    "e": "",
                ])
        }

        @Test func integersStayIntegersUntilTheyOverflow() throws {
            #expect(try parse("9223372036854775807") == .integer(Int64.max))
            #expect(try parse("-9223372036854775808") == .integer(Int64.min))
            #expect(try parse("9223372036854775808") == .number(9_223_372_036_854_775_808))
            #expect(try parse("-0") == .integer(0))
            #expect(try parse("0") == .integer(0))
        }

        @Test func decodesEscapes() throws {
            #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
            #expect(try parse(#""\u00e9\u4e2d\ud83d\ude00""#) == .string("é中😀"))
            #expect(try parse(#""plain é 中""#) == .string("plain é 中"))
        }

        @Test(arguments: [
            "", " ", "{", "[", "[1,]", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "01", "1.", ".5", "-", "1e", "+1",
            "tru", "nul", "\"abc", "\"a\u{01}b\"", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"",
            "\"\\ud83d\\u0041\"", "[1] 2", "{}}", "NaN", "Infinity", "'a'", "[1 2]", "/*c*/1",
        ])
        func rejectsMalformedJSON(_ text: String) {
            #expect(throws: JSONSyntaxError.self) { try parse(text) }
        }

        @Test func rejectsInvalidUTF8InStrings() {
            #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(utf8: [0x22, 0xC3, 0x28, 0x22]) }
            #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(utf8: [0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        }

        @Test func limitsNestingDepth() throws {
            let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
            #expect(throws: JSONSyntaxError.self) { try parse(deep) }
            let fine = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
            _ = try parse(fine)
        }

        @Test func reportsTheOffset() {
            #expect(throws: JSONSyntaxError(offset: 6, reason: "expected ',' or ']'")) { try parse("[1, 2 3]") }
        }

        @Test func serialisesCompactlyWithSortedKeys() {
            let value: JSONValue = ["b": [1, 2.5, nil, true], "a": "x\"y\\z\n\u{1}é"]
            #expect(
                String(decoding: value.jsonBytes, as: UTF8.self) == #"{"a":"x\"y\\z\n\u0001é","b":[1,2.5,null,true]}"#)
            #expect(JSONValue.number(.infinity).jsonBytes == Array("null".utf8))
        }

        @Test func roundTrips() throws {
            let value: JSONValue = [
                "jobId": "j-1", "amount": 12.75, "count": 3, "nested": ["list": [[], [:], "😀", -1e-7]], "flag": false,
            ]
            #expect(try JSONValue.parse(utf8: value.jsonBytes) == value)
            let controls = String(decoding: (0..<0x20).map { UInt8($0) } + bytes("a\"b\\c/"), as: UTF8.self)
            #expect(try JSONValue.parse(utf8: JSONValue.string(controls).jsonBytes) == .string(controls))
        }
    }
}
