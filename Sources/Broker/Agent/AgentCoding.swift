import Foundation

/// The agent's reading of job records and writing of status updates, done by hand because they
/// run on every job and Foundation's `Codable` JSON dominated a memory-backed job's cost.
extension JobRecord {
    /// Decodes a stored record for running it. An agent needs only the owner
    /// (`user.publicKey`, to address the statuses) and the payload, so a record whose other
    /// members are missing or of another type than SPEC §1 says (a producer's `createdAt` in
    /// milliseconds, an unknown `status`) still runs, with those members defaulted, as the
    /// original guide's agent, which reads just those two, runs it. `queuedId` (the id taken
    /// from the queue) stands in for a `jobId` that is missing or not a string.
    ///
    /// The one-pass scan answers for usual records; anything it leaves open is parsed into a
    /// `JSONValue` and picked apart; what that cannot read (no owner, or JSON only Foundation
    /// accepts) goes through `JSONDecoder`, whose error says what is wrong.
    static func decodeForAgent(_ bytes: [UInt8], queuedId: String? = nil) throws -> JobRecord {
        if let record = scanned(bytes) { return record }
        if let value = try? JSONValue.parse(utf8: bytes), let record = JobRecord(agentFields: value, queuedId: queuedId) {
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

    /// The record from a parsed object, with `init(from:)`'s defaults for missing members and
    /// for members of another type; `nil` without an object holding `user.publicKey` text.
    init?(agentFields value: JSONValue, queuedId: String?) {
        guard case .object(let fields) = value, case .object(let user) = fields["user"],
            case .string(let publicKey) = user["publicKey"]
        else { return nil }
        func text(_ key: String) -> String? {
            if case .string(let text) = fields[key] { return text }
            return nil
        }
        var history: [HistoryEntry] = []
        if case .array(let entries) = fields["history"] {
            for entry in entries {
                guard case .string(let status) = entry["status"], let entryStatus = JobStatus(rawValue: status),
                    case .string(let timestamp) = entry["timestamp"]
                else { continue }
                history.append(HistoryEntry(status: entryStatus, timestamp: timestamp))
            }
        }
        var attempts = 0
        switch fields["attempts"] {
        case .integer(let count): attempts = Int(clamping: count)
        case .number(let count) where count == count.rounded() && abs(count) < 1e15: attempts = Int(count)
        default: break
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
        let createdAt = text("createdAt")
        self.init(
            jobId: text("jobId") ?? queuedId ?? "", type: text("type") ?? "rebalance",
            status: text("status").flatMap(JobStatus.init(rawValue:)) ?? .created, user: Owner(publicKey: publicKey),
            payload: payload, createdAt: createdAt ?? "", updatedAt: text("updatedAt") ?? createdAt ?? "",
            history: history, result: result, error: text("error"), attempts: attempts)
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
