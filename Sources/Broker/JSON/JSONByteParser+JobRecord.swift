/// A stored job record read in one pass straight into a ``JobRecord``: the agent reads one
/// per job, and building a `[String: JSONValue]` for the whole record (hashing every member
/// name, then looking each up again) cost more than the rest of a memory-backed job.
///
/// The scan only answers when the answer is certain to be what parsing into a `JSONValue`
/// and picking the members would give. Anything unusual — a duplicated member (JSON leaves
/// its meaning to the reader), an escaped or non-ASCII member name, a field of an unexpected
/// type, bad JSON — makes it return `nil`, and the caller takes the general path, which
/// decides and reports errors exactly as before.
extension JSONByteParser {
    /// The members of a record the scan knows, as bits of a set (to notice duplicates).
    private enum RecordMember: UInt16 {
        case jobId = 1, type = 2, status = 4, user = 8, payload = 16, createdAt = 32, updatedAt = 64
        case history = 128, result = 256, error = 512, attempts = 1024

        init?(name: UnsafeBufferPointer<UInt8>) {
            // By length, then the one or two names of that length.
            let member: RecordMember
            switch name.count {
            case 4: member = name.first == UInt8(ascii: "t") ? .type : .user
            case 5: member = name.first == UInt8(ascii: "j") ? .jobId : .error
            case 6: member = name.first == UInt8(ascii: "s") ? .status : .result
            case 7: member = name.first == UInt8(ascii: "p") ? .payload : .history
            case 8: member = .attempts
            case 9: member = name.first == UInt8(ascii: "c") ? .createdAt : .updatedAt
            default: return nil
            }
            guard name.matches(member.name) else { return nil }
            self = member
        }

        private var name: StaticString {
            switch self {
            case .jobId: "jobId"
            case .type: "type"
            case .status: "status"
            case .user: "user"
            case .payload: "payload"
            case .createdAt: "createdAt"
            case .updatedAt: "updatedAt"
            case .history: "history"
            case .result: "result"
            case .error: "error"
            case .attempts: "attempts"
            }
        }
    }

    /// Scans one whole record (the entire input); `nil` when the general path must decide.
    mutating func scanJobRecord() throws(JSONSyntaxError) -> JobRecord? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        var seen: UInt16 = 0
        var jobId: String?
        var status: JobStatus?
        var publicKey: String?
        var type: String?
        var createdAt: String?
        var updatedAt: String?
        var error: String?
        var payload = JSONValue.object([:])
        var result: JSONValue?
        var history: [JobRecord.HistoryEntry] = []
        var attempts = 0
        var stamp: PlainString?  // createdAt, updatedAt and the history's timestamps are often one text
        var members = try beginObject()
        while members {
            guard let name = try memberName() else { return nil }
            guard let member = RecordMember(name: name) else {
                _ = try parseValue(depth: 1)  // a member this version does not use: checked, skipped
                members = try nextMember()
                continue
            }
            guard seen & member.rawValue == 0 else { return nil }
            seen |= member.rawValue
            switch member {
            case .jobId:
                guard let text = try stringValue() else { return nil }
                jobId = text
            case .status:
                guard let text = try stringValue(), let value = JobStatus(rawValue: text) else { return nil }
                status = value
            case .user:
                guard let key = try scanOwner() else { return nil }
                publicKey = key
            case .payload:
                let value = try parseValue(depth: 1)
                if case .null = value {} else { payload = value }
            case .result:
                let value = try parseValue(depth: 1)
                if case .null = value {} else { result = value }
            case .createdAt, .updatedAt:
                guard case .some(let text) = try optionalString(reusing: &stamp) else { return nil }
                if member == .createdAt { createdAt = text } else { updatedAt = text }
            case .type, .error:
                var unshared: PlainString?
                guard case .some(let text) = try optionalString(reusing: &unshared) else { return nil }
                if member == .type { type = text } else { error = text }
            case .history:
                guard let entries = try scanHistory(reusing: &stamp) else { return nil }
                history = entries
            case .attempts:
                switch try parseValue(depth: 1) {
                case .null: break
                case .integer(let count) where count >= Int64(Int.min) && count <= Int64(Int.max): attempts = Int(count)
                default: return nil
                }
            }
            members = try nextMember()
        }
        skipWhitespace()
        guard index == bytes.count, let jobId, let status, let publicKey else { return nil }
        return JobRecord(
            jobId: jobId, type: type ?? "rebalance", status: status, user: JobRecord.Owner(publicKey: publicKey),
            payload: payload, createdAt: createdAt ?? "", updatedAt: updatedAt ?? createdAt ?? "", history: history,
            result: result, error: error, attempts: attempts)
    }

    /// `user`: an object whose `publicKey` is a string; other members are skipped.
    private mutating func scanOwner() throws(JSONSyntaxError) -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
        var publicKey: String?
        var members = try beginObject()
        while members {
            guard let name = try memberName() else { return nil }
            if name.matches("publicKey") {
                guard publicKey == nil, let text = try stringValue() else { return nil }
                publicKey = text
            } else {
                _ = try parseValue(depth: 2)
            }
            members = try nextMember()
        }
        return publicKey
    }

    /// `history`: `null` (none) or an array of objects with a known `status` and a string
    /// `timestamp`; other members of the entries are skipped.
    private mutating func scanHistory(
        reusing stamp: inout PlainString?
    ) throws(JSONSyntaxError) -> [JobRecord.HistoryEntry]? {
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "n") {
            try expectLiteral("null")
            return []
        }
        guard bytes[index] == UInt8(ascii: "[") else { return nil }
        index += 1
        var entries: [JobRecord.HistoryEntry] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return entries
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
            var status: JobStatus?
            var timestamp: String?
            var members = try beginObject()
            while members {
                guard let name = try memberName() else { return nil }
                if name.matches("status") {
                    guard status == nil, let text = try stringValue(), let value = JobStatus(rawValue: text) else {
                        return nil
                    }
                    status = value
                } else if name.matches("timestamp") {
                    guard timestamp == nil, let text = try stringValue(reusing: &stamp) else { return nil }
                    timestamp = text
                } else {
                    _ = try parseValue(depth: 3)
                }
                members = try nextMember()
            }
            guard let status, let timestamp else { return nil }
            entries.append(JobRecord.HistoryEntry(status: status, timestamp: timestamp))
            guard try continuesContainer(closing: UInt8(ascii: "]")) else { return entries }
        }
    }

    // MARK: Pieces

    /// Steps into the object at `index` (which is `{`); returns whether it has members.
    private mutating func beginObject() throws(JSONSyntaxError) -> Bool {
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return false
        }
        return true
    }

    /// After a member's value: steps over `,` (returns `true`) or the closing `}` (`false`).
    private mutating func nextMember() throws(JSONSyntaxError) -> Bool {
        try continuesContainer(closing: UInt8(ascii: "}"))
    }

    /// A member name and its `:`, as raw bytes; `nil` if it has an escape or a non-ASCII byte
    /// (the general path compares decoded names).
    private mutating func memberName() throws(JSONSyntaxError) -> UnsafeBufferPointer<UInt8>? {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
        index += 1
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { break }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        guard index < bytes.count else { throw error("unterminated string") }
        let name = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
        index += 1
        skipWhitespace()
        return name
    }

    /// A string value, or `nil` if the value is of another type.
    private mutating func stringValue() throws(JSONSyntaxError) -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        return try parseString()
    }

    /// A string or `null` (`.some(nil)`); `nil` if the value is of another type.
    private mutating func optionalString(reusing last: inout PlainString?) throws(JSONSyntaxError) -> String?? {
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "n") {
            try expectLiteral("null")
            return .some(nil)
        }
        guard let text = try stringValue(reusing: &last) else { return nil }
        return .some(text)
    }

    /// A string read earlier from these bytes without escapes: its place and its text.
    fileprivate struct PlainString {
        let start: Int
        let count: Int
        let text: String
    }

    /// A string value (`nil` if the value is of another type), sharing `last`'s text when the
    /// literal's bytes are the same: then no new string is allocated. `last` becomes this
    /// string if it has no escapes.
    ///
    /// Same bytes give the same text: `last` had no escapes (its text is exactly as long as
    /// its bytes, and every escape is longer than what it stands for), so neither has this
    /// literal, which ends where `last` ended.
    private mutating func stringValue(reusing last: inout PlainString?) throws(JSONSyntaxError) -> String? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let start = index + 1
        if let last, start + last.count < bytes.count, bytes[start + last.count] == UInt8(ascii: "\""),
            (0..<last.count).allSatisfy({ bytes[start + $0] == bytes[last.start + $0] })
        {
            index = start + last.count + 1
            return last.text
        }
        let text = try parseString()
        let count = index - 1 - start
        if text.utf8.count == count { last = PlainString(start: start, count: count, text: text) }
        return text
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes are exactly `name`'s UTF-8.
    fileprivate func matches(_ name: StaticString) -> Bool {
        guard count == name.utf8CodeUnitCount else { return false }
        let expected = name.utf8Start
        for offset in 0..<count where self[offset] != expected[offset] { return false }
        return true
    }
}
