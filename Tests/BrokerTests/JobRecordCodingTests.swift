import Broker
import Foundation
import Testing

/// JSON round trips of the shared job models, with the field names SPEC §1 fixes.
struct JobRecordCodingTests {
    /// The record exactly as SPEC §1 shows it.
    static let specRecord = """
        {
          "jobId": "1731304200000-a7f3e2k",
          "type": "rebalance",
          "status": "created",
          "user": { "publicKey": "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq" },
          "payload": { "amount": 1000, "priority": "high" },
          "createdAt": "2025-11-11T10:30:00.000Z",
          "updatedAt": "2025-11-11T10:30:45.000Z",
          "history": [ { "status": "created", "timestamp": "2025-11-11T10:30:00.000Z" } ],
          "result": null,
          "error": null,
          "attempts": 0
        }
        """

    private func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func theSpecRecordDecodes() throws {
        let record = try JSONDecoder().decode(JobRecord.self, from: Data(Self.specRecord.utf8))
        #expect(record.jobId == "1731304200000-a7f3e2k")
        #expect(record.type == "rebalance")
        #expect(record.status == .created)
        #expect(record.user.publicKey == "GXHEXYVepv5EQnhq9VYVWkvW6QDMRj4QZA2B2mmKpCzq")
        #expect(record.payload == ["amount": 1000, "priority": "high"])
        #expect(record.payload["amount"]?.doubleValue == 1000)
        #expect(record.history == [.init(status: .created, timestamp: "2025-11-11T10:30:00.000Z")])
        #expect(record.result == nil)
        #expect(record.error == nil)
        #expect(record.attempts == 0)
    }

    @Test func reEncodingKeepsEveryFieldNameAndTheExplicitNulls() throws {
        let record = try JSONDecoder().decode(JobRecord.self, from: Data(Self.specRecord.utf8))
        let encoded = try object(try JSONEncoder().encode(record))
        let original = try object(Data(Self.specRecord.utf8))
        #expect(Set(encoded.keys) == Set(original.keys))
        #expect(encoded["result"] is NSNull, "result is written as null, not left out")
        #expect(encoded["error"] is NSNull, "error is written as null, not left out")
        #expect((encoded["user"] as? [String: Any])?["publicKey"] as? String == record.user.publicKey)
        let again = try JSONDecoder().decode(JobRecord.self, from: try JSONEncoder().encode(record))
        #expect(again == record)
    }

    @Test func aFinishedRecordRoundTrips() throws {
        var record = try JSONDecoder().decode(JobRecord.self, from: Data(Self.specRecord.utf8))
        record.status = .done
        record.result = ["success": true, "fee": 20.5, "remainingAmount": 979.5, "tags": ["a", nil]]
        record.error = "none"
        record.attempts = 2
        record.history.append(.init(status: .done, timestamp: "2025-11-11T10:30:45.000Z"))
        let again = try JSONDecoder().decode(JobRecord.self, from: try JSONEncoder().encode(record))
        #expect(again == record)
    }

    @Test func anOlderRecordWithoutOptionalFieldsDecodes() throws {
        let minimal = #"{"jobId":"1-x","status":"processing","user":{"publicKey":"u"}}"#
        let record = try JSONDecoder().decode(JobRecord.self, from: Data(minimal.utf8))
        #expect(record.type == "rebalance")
        #expect(record.payload == .object([:]))
        #expect(record.history.isEmpty)
        #expect(record.attempts == 0)
    }

    @Test func anUnknownStatusIsRefused() {
        let bad = #"{"jobId":"1-x","status":"exploded","user":{"publicKey":"u"}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(JobRecord.self, from: Data(bad.utf8)) }
    }

    @Test(arguments: [
        "null", "true", "false", "0", "-42", "9007199254740993", "1.5", "-0.25", "1e300", "\"text\"", "\"\"",
        "[]", "{}", "[1,\"a\",null,[true]]", "{\"a\":{\"b\":[1,2.5,\"c\"]},\"e\":null}",
    ])
    func jsonValueRoundTrips(_ text: String) throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        let again = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
        #expect(again == value)
    }

    @Test func jsonValueKeepsIntegersExactAndTellsKindsApart() throws {
        let decode = { (text: String) in try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
        #expect(try decode("9007199254740993") == .integer(9_007_199_254_740_993))
        #expect(try decode("1.5") == .number(1.5))
        #expect(try decode("true") == .bool(true))
        #expect(try decode("1") == .integer(1), "a JSON 1 is a number, not a Bool")
        #expect(try decode("\"1\"") == .string("1"))
        #expect(try decode("{\"k\":null}")["k"] == .null)
        #expect(try decode("[1]")["k"] == nil)
    }

    @Test func statusUpdateDecodesWithOnlyRequiredFields() throws {
        let text = #"{"jobId":"1-x","status":"done","userId":"u","result":{"fee":20}}"#
        let update = try JSONDecoder().decode(StatusUpdate.self, from: Data(text.utf8))
        #expect(update.status == .done)
        #expect(update.result?["fee"] == .integer(20))
        #expect(update.attempts == nil)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(StatusUpdate.self, from: Data(#"{"jobId":"1-x","status":"done"}"#.utf8))
        }
    }
}
