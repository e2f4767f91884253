@testable import Broker
import Foundation
import Testing

@Suite("The agent's JSON: record parsing and status writing")
struct AgentCodingTests {
    @Test("a record written by JSONEncoder reads back the same through the fast path")
    func recordRoundTrip() throws {
        let record = JobRecord(
            jobId: "1731304200000-a7f3e2k", type: "rebalance", status: .processing,
            user: .init(publicKey: "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq"),
            payload: ["amount": 1000, "priority": "high", "ratio": 0.25, "tags": ["a", "b"], "note": "é \"q\" \\ \n\u{1F600}"],
            createdAt: "2025-11-11T10:30:00.000Z", updatedAt: "2025-11-11T10:30:45.000Z",
            history: [.init(status: .created, timestamp: "2025-11-11T10:30:00.000Z")], result: nil, error: nil,
            attempts: 2)
        let bytes = Array(try JSONEncoder().encode(record))
        #expect(try JobRecord.decodeForAgent(bytes) == record)
    }

    @Test("escapes, surrogate pairs, numbers and nesting parse as JSON says")
    func parserCases() throws {
        let text = #"{"s":"a\u00e9\ud83d\ude00\/\t","i":-12,"d":1.5e2,"z":0,"b":[true,false,null],"o":{}}"#
        let value = try JSONValue.parse(utf8: Array(text.utf8))
        #expect(value["s"] == "aé😀/\t")
        #expect(value["i"] == .integer(-12))
        #expect(value["d"] == .number(150))
        #expect(value["z"] == .integer(0))
        #expect(value["b"] == [true, false, nil])
        #expect(value["o"] == .object([:]))
    }

    @Test("malformed JSON is refused", arguments: [
        "", "{", "{\"a\":}", "[1,]", "01", "\"\\x\"", "tru", "{\"a\":1} x", "\"a\nb\"", "1.", "-",
    ])
    func malformed(text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(utf8: Array(text.utf8)) }
    }

    @Test("a record missing its owner is refused with Codable's error")
    func recordWithoutOwner() {
        let bytes = Array(#"{"jobId":"x","status":"created","payload":{}}"#.utf8)
        #expect(throws: DecodingError.self) { try JobRecord.decodeForAgent(bytes) }
    }

    @Test("the agent's cached key names are JobNames' names")
    func agentKeys() {
        for names in [JobNames(), JobNames(prefix: "bench42", type: "other:kind")] {
            let keys = AgentKeys(names)
            #expect(keys.queue == names.queue)
            #expect(keys.processing == names.processing)
            #expect(keys.statusChannel == names.statusChannel)
            for id in ["1731304200000-a7f3e2k0q9", "x", "é-😀"] {
                #expect(keys.record(id) == names.record(id))
                #expect(keys.lease(id) == names.lease(id))
            }
        }
    }

    @Test("status updates are compact JSON that decodes to the same update")
    func statusRoundTrip() throws {
        let update = StatusUpdate(
            jobId: "j", status: .error, userId: "u\"1", timestamp: "2025-11-11T10:30:00.000Z",
            result: ["fee": 20.5, "ok": true], error: "Invalid amount", details: "line\nbreak", attempts: 3)
        let bytes = update.jsonBytesForAgent
        #expect(try JSONDecoder().decode(StatusUpdate.self, from: Data(bytes)) == update)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix(#"{"jobId":"j","status":"error","userId":"u\"1""#))
        let minimal = StatusUpdate(jobId: "j", status: .processing, userId: "u")
        #expect(String(decoding: minimal.jsonBytesForAgent, as: UTF8.self) == #"{"jobId":"j","status":"processing","userId":"u"}"#)
        let done = StatusUpdate(jobId: "j", status: .done, userId: "u", timestamp: "t", result: ["b": 1, "a": [true]])
        #expect(String(decoding: done.jsonBytesForAgent, as: UTF8.self)
            == #"{"jobId":"j","status":"done","userId":"u","timestamp":"t","result":{"a":[true],"b":1}}"#)
    }

    @Test("an update stamped as it is written has the bytes of one carrying that time's text")
    func stampedStatusUpdate() throws {
        let time = Timestamp(milliseconds: 1_731_320_999_007)
        var update = StatusUpdate(jobId: "j", status: .error, userId: "u", error: "boom", attempts: 2)
        let stamped = update.jsonBytesForAgent(stampedAt: time)
        update.timestamp = time.iso8601
        #expect(stamped == update.jsonBytesForAgent)
        #expect(String(decoding: stamped, as: UTF8.self)
            == #"{"jobId":"j","status":"error","userId":"u","timestamp":"2024-11-11T10:29:59.007Z","error":"boom","attempts":2}"#)
    }
}
