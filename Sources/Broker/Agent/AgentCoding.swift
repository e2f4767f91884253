import Foundation

/// The agent's reading of job records and writing of status updates, done by hand because they
/// run on every job and Foundation's `Codable` JSON dominated a memory-backed job's cost.
extension JobRecord {
    /// Decodes a stored record. The one-pass scan answers for usual records; anything it
    /// leaves open is parsed into a `JSONValue` and picked apart, and what that does not
    /// recognise goes through `JSONDecoder`, so what is accepted, and the errors, stay those
    /// of `Codable`.
    static func decodeForAgent(_ bytes: [UInt8]) throws -> JobRecord {
        if let record = scanned(bytes) { return record }
        if let value = try? JSONValue.parse(utf8: bytes), let record = JobRecord(fastFields: value) {
            return record
        }
        return try JSONDecoder().decode(JobRecord.self, from: Data(bytes))
    }

    /// The record read by the one-pass scan, or `nil` when the general path must decide
    /// (see `JSONByteParser.scanJobRecord()`).
    static func scanned(_ bytes: [UInt8]) -> JobRecord? {
        bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONByteParser(bytes: buffer)
            return (try? parser.scanJobRecord()) ?? nil
        }
    }

    /// The record from a parsed object, with the same defaults as `init(from:)`; `nil` when a
    /// field is missing or of another type (the caller then lets `JSONDecoder` say why).
    init?(fastFields value: JSONValue) {
        guard case .object(let fields) = value,
            case .string(let jobId) = fields["jobId"],
            case .string(let statusText) = fields["status"], let status = JobStatus(rawValue: statusText),
            case .object(let user) = fields["user"], case .string(let publicKey) = user["publicKey"]
        else { return nil }
        func optionalString(_ key: String) -> String?? {
            switch fields[key] {
            case nil, .null: return .some(nil)
            case .string(let text): return .some(text)
            default: return nil
            }
        }
        guard let type = optionalString("type"), let createdAt = optionalString("createdAt"),
            let updatedAt = optionalString("updatedAt"), let error = optionalString("error")
        else { return nil }
        var history: [HistoryEntry] = []
        switch fields["history"] {
        case nil, .null: break
        case .array(let entries):
            for entry in entries {
                guard case .string(let text) = entry["status"], let entryStatus = JobStatus(rawValue: text),
                    case .string(let timestamp) = entry["timestamp"]
                else { return nil }
                history.append(HistoryEntry(status: entryStatus, timestamp: timestamp))
            }
        default: return nil
        }
        var attempts = 0
        switch fields["attempts"] {
        case nil, .null: break
        case .integer(let count) where count >= Int64(Int.min) && count <= Int64(Int.max): attempts = Int(count)
        default: return nil
        }
        let payload: JSONValue
        switch fields["payload"] {
        case nil, .null: payload = .object([:])
        case let value?: payload = value
        }
        let result: JSONValue?
        switch fields["result"] {
        case nil, .null: result = nil
        case let value?: result = value
        }
        self.init(
            jobId: jobId, type: type ?? "rebalance", status: status, user: Owner(publicKey: publicKey),
            payload: payload, createdAt: createdAt ?? "", updatedAt: updatedAt ?? createdAt ?? "", history: history,
            result: result, error: error, attempts: attempts)
    }
}

extension StatusUpdate {
    /// Compact JSON in the order of SPEC §1 (`jobId`, `status`, `userId`, `timestamp`, then the
    /// optional fields present).
    var jsonBytesForAgent: [UInt8] { agentJSON(stampedAt: nil) }

    /// ``jsonBytesForAgent`` with `timestamp` written straight from `time` (in place of
    /// ``timestamp``): the same bytes, without making the timestamp's string first.
    func jsonBytesForAgent(stampedAt time: Timestamp) -> [UInt8] { agentJSON(stampedAt: time) }

    private func agentJSON(stampedAt time: Timestamp?) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(result == nil ? 160 : 320)
        output.appendJSON(#"{"jobId":"#)
        JSONValue.writeString(jobId, into: &output)
        output.appendJSON(#","status":""#)
        output.append(contentsOf: status.rawValue.utf8)  // [a-z] only
        output.appendJSON(#"","userId":"#)
        JSONValue.writeString(userId, into: &output)
        if let time {
            output.appendJSON(#","timestamp":""#)
            time.writeISO8601(into: &output)  // digits and punctuation: nothing to escape
            output.append(UInt8(ascii: "\""))
        } else if let timestamp {
            output.appendJSON(#","timestamp":"#)
            JSONValue.writeString(timestamp, into: &output)
        }
        if let result {
            output.appendJSON(#","result":"#)
            result.write(into: &output)
        }
        if let error {
            output.appendJSON(#","error":"#)
            JSONValue.writeString(error, into: &output)
        }
        if let details {
            output.appendJSON(#","details":"#)
            JSONValue.writeString(details, into: &output)
        }
        if let attempts {
            output.appendJSON(#","attempts":"#)
            output.append(contentsOf: String(attempts).utf8)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }
}
