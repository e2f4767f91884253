/// The job record's own JSON path (no Foundation coders on the hot path): records are read
/// and rewritten for every status update.
///
/// Members this version does not know — added by other software sharing the keys — are kept
/// across rewrites (``StoredRecord``): SPEC §1 allows fields to be added, so we must not
/// remove them.
package struct StoredRecord: Sendable, Hashable {
    package var record: JobRecord
    /// Members of the stored object that ``JobRecord`` does not model.
    package var extra: [String: JSONValue]

    private static let known: Set<String> = [
        "jobId", "type", "status", "user", "payload", "createdAt", "updatedAt", "history", "result", "error", "attempts",
    ]

    package init(record: JobRecord, extra: [String: JSONValue] = [:]) {
        self.record = record
        self.extra = extra
    }

    /// Parses a stored record, with the same defaults as `JobRecord`'s `Decodable`
    /// conformance; `nil` if it is not a job record.
    package init?(bytes: [UInt8]) {
        guard case .object(let members)? = try? JSONValue.parse(utf8: bytes),
            let jobId = members["jobId"]?.stringValue,
            let status = members["status"]?.stringValue.flatMap(JobStatus.init(rawValue:)),
            let publicKey = members["user"]?["publicKey"]?.stringValue
        else { return nil }
        var history: [JobRecord.HistoryEntry] = []
        switch members["history"] {
        case nil, .null?: break
        case .array(let entries)?:
            for entry in entries {
                guard let status = entry["status"]?.stringValue.flatMap(JobStatus.init(rawValue:)),
                    let timestamp = entry["timestamp"]?.stringValue
                else { return nil }
                history.append(.init(status: status, timestamp: timestamp))
            }
        default: return nil
        }
        func optionalString(_ key: String) -> String?? {
            switch members[key] {
            case nil, .null?: return .some(nil)
            case .string(let text)?: return .some(text)
            default: return nil
            }
        }
        guard let type = optionalString("type"), let createdAt = optionalString("createdAt"),
            let updatedAt = optionalString("updatedAt"), let error = optionalString("error")
        else { return nil }
        var attempts = 0
        switch members["attempts"] {
        case nil, .null?: break
        case .integer(let value)?: attempts = Int(clamping: value)
        case .number(let value)? where value == value.rounded() && abs(value) < 1e15: attempts = Int(value)
        default: return nil
        }
        // Not `flatMap { … nil … }`: JSONValue is ExpressibleByNilLiteral, so that `nil` would be `.null`.
        var result: JSONValue?
        if let value = members["result"], value != .null { result = value }
        record = JobRecord(
            jobId: jobId, type: type ?? "rebalance", status: status, user: .init(publicKey: publicKey),
            payload: members["payload"] ?? .object([:]), createdAt: createdAt ?? "", updatedAt: updatedAt ?? createdAt ?? "",
            history: history, result: result, error: error, attempts: attempts)
        extra = members.filter { !Self.known.contains($0.key) }
    }

    /// The owner (`user.publicKey`) of a stored value that is not a job record (see
    /// ``init(bytes:)``) but a JSON object naming one, as an agent reads it; `nil` otherwise.
    package static func owner(in bytes: [UInt8]) -> String? {
        guard case .object(let members)? = try? JSONValue.parse(utf8: bytes) else { return nil }
        return members["user"]?["publicKey"]?.stringValue
    }

    /// The `status` member of a stored value, if it is a string (for a value that is not a
    /// job record, see ``owner(in:)``).
    package static func status(in bytes: [UInt8]) -> String? {
        guard case .object(let members)? = try? JSONValue.parse(utf8: bytes) else { return nil }
        return members["status"]?.stringValue
    }

    /// The record as stored: SPEC §1's member order, `result` and `error` as explicit
    /// `null`s when absent, then any extra members.
    package var bytes: [UInt8] {
        var out: [UInt8] = []
        // Member names and punctuation take about 190 bytes, each history entry about 40 plus
        // its timestamp; 64 more for a small payload. A new job's record is about 320 bytes:
        // a fixed 256 made every record write grow (copy) its buffer once.
        var capacity = 256 + record.jobId.utf8.count + record.type.utf8.count + record.user.publicKey.utf8.count
        capacity += record.createdAt.utf8.count + record.updatedAt.utf8.count
        for entry in record.history { capacity += 40 + entry.timestamp.utf8.count }
        out.reserveCapacity(capacity)
        // Member names as literals: they need no escaping, and this runs for every record written.
        out.appendJSON(#"{"jobId":"#)
        JSONValue.writeString(record.jobId, into: &out)
        out.appendJSON(#","type":"#)
        JSONValue.writeString(record.type, into: &out)
        out.appendJSON(#","status":""#)
        out.append(contentsOf: record.status.rawValue.utf8)  // [a-z] only
        out.appendJSON(#"","user":{"publicKey":"#)
        JSONValue.writeString(record.user.publicKey, into: &out)
        out.appendJSON(#"},"payload":"#)
        record.payload.write(into: &out)
        out.appendJSON(#","createdAt":"#)
        JSONValue.writeString(record.createdAt, into: &out)
        out.appendJSON(#","updatedAt":"#)
        JSONValue.writeString(record.updatedAt, into: &out)
        out.appendJSON(#","history":["#)
        for (index, entry) in record.history.enumerated() {
            out.appendJSON(index > 0 ? #",{"status":""# : #"{"status":""#)
            out.append(contentsOf: entry.status.rawValue.utf8)
            out.appendJSON(#"","timestamp":"#)
            JSONValue.writeString(entry.timestamp, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.appendJSON(#"],"result":"#)
        (record.result ?? .null).write(into: &out)
        out.appendJSON(#","error":"#)
        if let error = record.error { JSONValue.writeString(error, into: &out) } else { out.appendJSON("null") }
        out.appendJSON(#","attempts":"#)
        out.append(contentsOf: String(record.attempts).utf8)
        for (name, value) in extra.sorted(by: { $0.key < $1.key }) {
            out.append(UInt8(ascii: ","))
            JSONValue.writeString(name, into: &out)
            out.append(UInt8(ascii: ":"))
            value.write(into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
