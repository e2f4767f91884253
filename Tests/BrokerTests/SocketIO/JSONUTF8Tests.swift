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
            "tru", "nul", "\"abc", "\"a\u{01}b\"", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\\u12\"", "[1] 2", "{}}", "NaN", "Infinity", "'a'", "[1 2]", "/*c*/1",
        ])
        func rejectsMalformedJSON(_ text: String) {
            #expect(throws: JSONSyntaxError.self) { try parse(text) }
        }

        /// As JavaScript read the original's inputs: Node decoded them as UTF-8 with replacement,
        /// and `JSON.parse` takes an unpaired surrogate (a JavaScript agent that cuts a string
        /// inside a pair writes one). U+FFFD stands in; the message is not refused.
        @Test func invalidUTF8AndUnpairedSurrogatesReadAsReplacementCharacters() throws {
            #expect(try JSONValue.parse(utf8: [0x22, 0xC3, 0x28, 0x22]) == .string("\u{FFFD}("))
            #expect(try JSONValue.parse(utf8: [0x22, 0x5C, 0x6E, 0xFF, 0x22]) == .string("\n\u{FFFD}"))
            #expect(try parse(#""\ud83d""#) == .string("\u{FFFD}"))
            #expect(try parse(#""\ude00x""#) == .string("\u{FFFD}x"))
            #expect(try parse(#""a\ud83d\u0041""#) == .string("a\u{FFFD}A"))
            // A high surrogate after an unpaired one still pairs with the low one after it.
            #expect(try parse(#""\ud83d\ud83d\ude00""#) == .string("\u{FFFD}😀"))
            #expect(try parse(#"{"result":{"text":"caf\u00e9 \ud83d"}}"#) == ["result": ["text": "café \u{FFFD}"]])
        }

        /// Numbers are written as JavaScript's `JSON.stringify` writes them (ECMA-262
        /// `Number::toString`), the text the original gave them; expected values from Node 18.
        @Test(arguments: [
            (100.0, "100"), (-0.0, "0"), (0.1, "0.1"), (1e-7, "1e-7"), (1e-6, "0.000001"), (1.5e-7, "1.5e-7"),
            (1e16, "10000000000000000"), (1e21, "1e+21"), (1.5e300, "1.5e+300"),
            (123456789012345680000, "123456789012345680000"), (12345678901234567890, "12345678901234567000"),
            (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (0.000001234, "0.000001234"),
            (1.234e-7, "1.234e-7"), (2.5, "2.5"), (-2.5, "-2.5"), (123.456, "123.456"), (1e20, "100000000000000000000"),
            (-1e-7, "-1e-7"), (0.30000000000000004, "0.30000000000000004"), (4.35, "4.35"),
            (1.0 / 3, "0.3333333333333333"), (9007199254740994, "9007199254740994"), (-1e21, "-1e+21"),
            (1e-323, "1e-323"), (123e-20, "1.23e-18"), (0.00001, "0.00001"), (1.0000000000000002, "1.0000000000000002"),
        ] as [(Double, String)])
        func numbersAreWrittenAsJavaScriptWritesThem(value: Double, text: String) throws {
            #expect(String(decoding: JSONValue.number(value).jsonBytes, as: UTF8.self) == text)
            #expect(try JSONValue.parse(utf8: Array(text.utf8)).doubleValue == value)
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
