import Broker
import Foundation
import Testing

@Suite("JSON parsing and job record coding (no I/O)")
struct JSONCodingTests {
    let record = JobRecord(
        jobId: "1731304200000-a7f3e2k", type: "rebalance", status: .done, user: .init(publicKey: "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq"),
        payload: ["amount": 1000, "priority": "high", "nested": ["x": [1.5, nil, true]]], createdAt: "2025-11-11T10:30:00.000Z",
        updatedAt: "2025-11-11T10:30:45.000Z",
        history: [.init(status: .created, timestamp: "2025-11-11T10:30:00.000Z"), .init(status: .done, timestamp: "2025-11-11T10:30:45.000Z")],
        result: ["success": true, "fee": 20], error: nil, attempts: 1)

    @Test("a stored record round-trips and reads as Foundation's coders read it")
    func recordRoundTrip() throws {
        let bytes = StoredRecord(record: record).bytes
        let parsed = try #require(StoredRecord(bytes: bytes))
        #expect(parsed.record == record)
        #expect(parsed.extra.isEmpty)
        #expect(try JSONDecoder().decode(JobRecord.self, from: Data(bytes)) == record)
        let foundation = Array(try JSONEncoder().encode(record))
        #expect(StoredRecord(bytes: foundation)?.record == record)
        // SPEC §1 member order, explicit nulls.
        let text = String(decoding: StoredRecord(record: JobRecord(
            jobId: "1-a", type: "rebalance", user: .init(publicKey: "k"), payload: [:], createdAt: "t", updatedAt: "t",
            history: [])).bytes, as: UTF8.self)
        #expect(text == #"{"jobId":"1-a","type":"rebalance","status":"created","user":{"publicKey":"k"},"payload":{},"createdAt":"t","updatedAt":"t","history":[],"result":null,"error":null,"attempts":0}"#)
    }

    @Test("members added by other software survive a rewrite; defaults as the Codable conformance")
    func extraMembers() throws {
        let text = #"{"jobId":"1-a","status":"processing","user":{"publicKey":"k"},"priority":7,"tags":["a"]}"#
        let parsed = try #require(StoredRecord(bytes: Array(text.utf8)))
        #expect(parsed.extra == ["priority": 7, "tags": ["a"]])
        #expect(parsed.record == (try JSONDecoder().decode(JobRecord.self, from: Data(text.utf8))))
        let again = try #require(StoredRecord(bytes: parsed.bytes))
        #expect(again == parsed)
        for bad in [#"{"status":"done","user":{"publicKey":"k"}}"#, #"{"jobId":"1","status":"odd","user":{"publicKey":"k"}}"#,
            #"{"jobId":"1","status":"done"}"#, #"{"jobId":"1","status":"done","user":{"publicKey":"k"},"history":[{"status":"x"}]}"#, "[]", "{oops"]
        {
            #expect(StoredRecord(bytes: Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    /// (An unpaired surrogate escape, which Foundation refuses, reads as U+FFFD: see JSONUTF8Tests.)
    @Test("the parser accepts JSON and refuses the rest, like Foundation")
    func parser() throws {
        let good = [
            #"{"a":[1,-2,3.5,-0.25E-2,true,false,null],"b":"x\"y\\z\/\n\u00e9\ud83d\ude00","c":{}}"#, "[]", " 42 ", #""""#,
            "9223372036854775807", "-9223372036854775808", "0",
        ]
        for text in good {
            let ours = try JSONValue(parsing: Array(text.utf8))
            let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(ours.jsonText == theirs.jsonText, "\(text)")
        }
        #expect(try JSONValue(parsing: Array(#""\ud83d\ude00""#.utf8)) == "😀")
        let bad = [
            "", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "+1", "1e", "tru", "nul", "\"abc", "\"\\x\"",
            "{\"a\" 1}", "[1 2]", "\"a\u{01}\"", "1 2", "{'a':1}", "NaN",
        ]
        for text in bad {
            #expect(throws: (any Error).self, "\(text)") { try JSONValue(parsing: Array(text.utf8)) }
        }
        #expect(try JSONValue(parsing: Array("1e3".utf8)).doubleValue == 1000)
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: (any Error).self) { try JSONValue(parsing: Array(deep.utf8)) }
    }

    @Test("objects are written with their members in key order, small and large alike", arguments: [0, 1, 2, 5, 16, 17, 40])
    func memberOrder(count: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let names = (0..<count).map { "k\($0 * 7919 % 1000)" + (($0 % 3 == 0) ? "é" : "") }.shuffled(using: &generator)
        var members: [String: JSONValue] = [:]
        for (index, name) in names.enumerated() { members[name] = ["n": .integer(Int64(index)), "s": .string(name)] }
        let text = JSONValue.object(members).jsonText
        let expected = "{" + members.keys.sorted().map { name in
            let value = members[name]!
            return "\"\(name)\":{\"n\":\(value["n"]!.doubleValue.map { Int($0) }!),\"s\":\"\(name)\"}"
        }.joined(separator: ",") + "}"
        #expect(text == expected)
        #expect(try JSONValue(parsing: Array(text.utf8)) == .object(members))
    }
}
