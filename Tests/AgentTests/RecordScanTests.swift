@testable import Broker
import Foundation
import Testing

/// The agent's one-pass record scan (`JobRecord.scanned`): it must read exactly what the
/// general path (parse into a `JSONValue`, pick the members; `Codable` for the rest) reads,
/// and leave to that path whatever it is not sure of.
@Suite("The agent's one-pass record scan")
struct RecordScanTests {
    static let full = JobRecord(
        jobId: "1731304200000-a7f3e2k0q9", type: "rebalance", status: .retrying,
        user: .init(publicKey: "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq"),
        payload: ["amount": 1000, "priority": "high", "ratio": 0.25, "tags": ["a", "b"], "nested": ["x": [1.5, nil, true]]],
        createdAt: "2025-11-11T10:30:00.000Z", updatedAt: "2025-11-11T10:30:45.000Z",
        history: [
            .init(status: .created, timestamp: "2025-11-11T10:30:00.000Z"),
            .init(status: .processing, timestamp: "2025-11-11T10:30:01.000Z"),
            .init(status: .retrying, timestamp: "2025-11-11T10:30:45.000Z"),
        ],
        result: ["partial": true, "fee": 20.5], error: "upstream timed out", attempts: 3)

    /// What the agent reads where the scan leaves off.
    static func generalPath(_ bytes: [UInt8]) throws -> JobRecord {
        if let value = try? JSONValue.parse(utf8: bytes), let record = JobRecord(agentFields: value, queuedId: nil) {
            return record
        }
        return try JSONDecoder().decode(JobRecord.self, from: Data(bytes))
    }

    @Test("every field, as StoredRecord and as JSONEncoder write it")
    func allFields() throws {
        for bytes in [StoredRecord(record: Self.full).bytes, Array(try JSONEncoder().encode(Self.full))] {
            let scanned = try #require(JobRecord.scanned(bytes), "\(String(decoding: bytes, as: UTF8.self))")
            #expect(scanned == Self.full)
            #expect(try JobRecord.decodeForAgent(bytes) == Self.full)
        }
    }

    @Test("escapes, non-ASCII text and whitespace in values read as JSON says")
    func escapes() throws {
        let text = """
             { "jobId" : "1-\\"q\\"\\\\" , "status":"created",
              "user":{"publicKey":"k\\u00e9y\\ud83d\\ude00/\\/"},"payload":{"note":"é \\n\\t"},
              "createdAt":"t\\u0031","updatedAt":"ü","history":[ {"status":"created","timestamp":"t\\u0031"} ],
              "error":"line\\nbreak" }\t
            """
        let bytes = Array(text.utf8)
        let scanned = try #require(JobRecord.scanned(bytes))
        #expect(scanned.jobId == #"1-"q"\"#)
        #expect(scanned.user.publicKey == "kéy😀//")
        #expect(scanned.payload == ["note": "é \n\t"])
        #expect(scanned.createdAt == "t1")
        #expect(scanned.updatedAt == "ü")
        #expect(scanned.error == "line\nbreak")
        #expect(scanned == (try JSONDecoder().decode(JobRecord.self, from: Data(bytes))))
        #expect(scanned == (try Self.generalPath(bytes)))
    }

    @Test("unknown members are skipped, at the top, in user and in history entries")
    func unknownMembers() throws {
        let text = #"""
            {"v":2,"jobId":"1-a","meta":{"deep":[{"x":[1,2,{"y":null}]}],"s":"\"}"},"status":"done",
            "user":{"name":"Ann","publicKey":"k","roles":["a"]},"payload":{"amount":5},
            "history":[{"by":"agent-1","status":"created","timestamp":"t","extra":{"a":[]}}],"tail":[true,false,-1.5e3]}
            """#
        let bytes = Array(text.utf8)
        let scanned = try #require(JobRecord.scanned(bytes))
        #expect(scanned.jobId == "1-a")
        #expect(scanned.status == .done)
        #expect(scanned.user.publicKey == "k")
        #expect(scanned.history == [.init(status: .created, timestamp: "t")])
        #expect(scanned == (try Self.generalPath(bytes)))
        #expect(scanned == (try JSONDecoder().decode(JobRecord.self, from: Data(bytes))))
    }

    @Test("missing and null optional fields take the Codable defaults", arguments: [
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"}}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"type":null,"payload":null,"createdAt":null,"updatedAt":null,"history":null,"result":null,"error":null,"attempts":null}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"createdAt":"c","history":[],"payload":[1]}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"type":"other","attempts":-7,"result":"text"}"#,
    ])
    func defaults(text: String) throws {
        let bytes = Array(text.utf8)
        let scanned = try #require(JobRecord.scanned(bytes))
        let decoded = try JSONDecoder().decode(JobRecord.self, from: Data(bytes))
        #expect(scanned == decoded)
        #expect(scanned == (try Self.generalPath(bytes)))
    }

    @Test("timestamps sharing their text, or only part of it, read as written", arguments: [
        #"{"jobId":"1","status":"created","user":{"publicKey":"k"},"createdAt":"2025-11-11T10:30:00.000Z","updatedAt":"2025-11-11T10:30:00.000Z","history":[{"status":"created","timestamp":"2025-11-11T10:30:00.000Z"}]}"#,
        #"{"jobId":"1","status":"created","user":{"publicKey":"k"},"createdAt":"ab","updatedAt":"abc","history":[{"status":"created","timestamp":"a"},{"status":"done","timestamp":"a"}]}"#,
        #"{"jobId":"1","status":"created","user":{"publicKey":"k"},"createdAt":"ab","updatedAt":"ab\"c","history":[{"status":"created","timestamp":"ab\\"}]}"#,
        #"{"jobId":"1","status":"created","user":{"publicKey":"k"},"createdAt":"t\u0031","updatedAt":"t1","history":[{"status":"created","timestamp":"t\u0031"}]}"#,
        #"{"jobId":"1","status":"created","user":{"publicKey":"k"},"createdAt":"","updatedAt":"","history":[{"status":"created","timestamp":"x"}]}"#,
    ])
    func sharedTimestamps(text: String) throws {
        let bytes = Array(text.utf8)
        let scanned = try #require(JobRecord.scanned(bytes))
        #expect(scanned == (try JSONDecoder().decode(JobRecord.self, from: Data(bytes))))
    }

    @Test("the defaults themselves")
    func defaultValues() throws {
        let scanned = try #require(JobRecord.scanned(Array(#"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"createdAt":"c"}"#.utf8)))
        #expect(scanned.type == "rebalance")
        #expect(scanned.updatedAt == "c")
        #expect(scanned.payload == .object([:]))
        #expect(scanned.history.isEmpty)
        #expect(scanned.result == nil)
        #expect(scanned.error == nil)
        #expect(scanned.attempts == 0)
    }

    @Test("valid but unusual records are left to the general path, which reads them as before", arguments: [
        #"{"jobId":"1-a","jobId":"1-b","status":"created","user":{"publicKey":"k"}}"#,  // duplicate member
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k","publicKey":"l"}}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"history":[{"status":"created","status":"done","timestamp":"t"}]}"#,
        #"{"job\u0049d":"1-a","status":"created","user":{"publicKey":"k"}}"#,  // escaped member name
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"attempts":2.0}"#,  // a whole double
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"attempts":1e0}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"é":1}"#,  // non-ASCII member name
    ])
    func unusual(text: String) throws {
        let bytes = Array(text.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        let expected = try? Self.generalPath(bytes)
        #expect(expected != nil || text.contains("attempts"), "the general path reads it")
        #expect((try? JobRecord.decodeForAgent(bytes)) == expected)
    }

    @Test("a duplicated member reads as before: the later one wins")
    func duplicateLaterWins() throws {
        let bytes = Array(#"{"jobId":"1-a","status":"created","status":"done","user":{"publicKey":"k"}}"#.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        #expect(try JobRecord.decodeForAgent(bytes).status == .done)
    }

    @Test("records without an owner are refused with Codable's error", arguments: [
        #"{"jobId":"1-a","status":"created"}"#,
        #"{"jobId":"1-a","status":"created","user":null}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":7}}"#,
        #"{"jobId":"1-a","status":"created","user":{}}"#,
        #"{"jobId":"1-a","status":"created","user":"k"}"#,
    ])
    func notJobs(text: String) {
        let bytes = Array(text.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        #expect(throws: DecodingError.self) { try JobRecord.decodeForAgent(bytes) }
    }

    /// The agent needs the owner and the payload; other members of another type than SPEC §1
    /// says take their defaults (a missing `jobId` is the queue's id), as the original guide's
    /// agent would not look at them either.
    @Test("members of another type take their defaults", arguments: [
        #"{"status":"created","user":{"publicKey":"k"}}"#,
        #"{"jobId":"1-a","status":"odd","user":{"publicKey":"k"}}"#,
        #"{"jobId":1,"status":"created","user":{"publicKey":"k"}}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"type":5}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"history":[{"status":"created"}]}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"history":["created"]}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"history":{}}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"attempts":"2"}"#,
        #"{"jobId":"1-a","user":{"publicKey":"k"},"createdAt":1731304200000,"error":{"code":1}}"#,
    ])
    func oddMembers(text: String) throws {
        let bytes = Array(text.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        let record = try JobRecord.decodeForAgent(bytes, queuedId: "1-a")
        #expect(record.jobId == "1-a")
        #expect(record.user.publicKey == "k")
        #expect(record.status == .created)
        #expect(record.type == "rebalance")
        #expect(record.history.isEmpty)
        #expect(record.attempts == 0)
        #expect(record.createdAt == "" && record.error == nil)
        #expect(record.payload == .object([:]))
    }

    @Test("malformed JSON is left to the general path, which refuses it", arguments: [
        "", "{", "[]", "null", #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"}} x"#,
        #"{"jobId":"1-a" "status":"created","user":{"publicKey":"k"}}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"x":[1 2]}"#,
        "{\"jobId\":\"1-\u{1}a\",\"status\":\"created\",\"user\":{\"publicKey\":\"k\"}}",
    ])
    func malformed(text: String) {
        let bytes = Array(text.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        #expect(throws: (any Error).self) { try JobRecord.decodeForAgent(bytes) }
    }

    /// Foundation's `JSONDecoder` accepts trailing commas; the scan refuses them, so such
    /// records still read as they did.
    @Test("trailing commas are left to the general path, which reads them as before", arguments: [
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"x":[1,]}"#,
        #"{"jobId":"1-a","status":"created","user":{"publicKey":"k"},"history":[{"status":"created","timestamp":"t"},]}"#,
    ])
    func trailingCommas(text: String) {
        let bytes = Array(text.utf8)
        #expect(JobRecord.scanned(bytes) == nil)
        let before = try? Self.generalPath(bytes)
        #expect((try? JobRecord.decodeForAgent(bytes)) == before)
    }

    @Test("invalid UTF-8 in a value reads as U+FFFD on both paths")
    func invalidUTF8() throws {
        var bytes = Array(#"{"jobId":"1-a","status":"created","user":{"publicKey":"kk"}}"#.utf8)
        bytes[bytes.count - 4] = 0xFF  // the second "k" of "kk"
        #expect(JobRecord.scanned(bytes)?.user.publicKey == "k\u{FFFD}")
        #expect(try Self.generalPath(bytes).user.publicKey == "k\u{FFFD}")
    }
}
