/// Why a status message was refused before it reached any job (SPEC §1: counted, logged,
/// dropped; it never stops the router).
public enum StatusMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not JSON, or not a JSON object.
    case malformed(String)
    /// `jobId`, `status` or `userId` is absent, empty or not a string (`userId` may also be
    /// an integer, read as its decimal text).
    case missingField(String)
    /// `status` is not one of `created`, `processing`, `retrying`, `done`, `error`.
    case unknownStatus(String)

    public var description: String {
        switch self {
        case .malformed(let detail): return "malformed status message: \(detail)"
        case .missingField(let field): return "status message lacks required field \"\(field)\""
        case .unknownStatus(let status): return "status message names unknown status \"\(status)\""
        }
    }
}

extension StatusUpdate {
    /// Parses a status message as agents publish it.
    ///
    /// Required fields are checked strictly; optional ones leniently, because agents in other
    /// languages differ: a non-string `error`/`details` is kept as its JSON text, `attempts`
    /// may be a number or a numeric string, a `timestamp` is kept only if it is a string.
    ///
    /// - Returns: the update and the message's members, so that fields this version does not
    ///   know (an agent's `progress`, say) still reach the client in the event data.
    public static func parse(_ bytes: [UInt8]) throws(StatusMessageError) -> (update: StatusUpdate, fields: [String: JSONValue]) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw .malformed("not JSON")
        }
        guard case .object(let fields) = value else { throw .malformed("not a JSON object") }
        func required(_ name: String) throws(StatusMessageError) -> String {
            guard let text = fields[name]?.stringValue, !text.isEmpty else { throw .missingField(name) }
            return text
        }
        let jobId = try required("jobId")
        let statusText = try required("status")
        guard let userId = fields["userId"]?.userIdText else { throw .missingField("userId") }
        guard let status = JobStatus(rawValue: statusText) else { throw .unknownStatus(statusText) }
        guard JobID.isAcceptable(jobId) else { throw .malformed("jobId is not a usable id") }
        func text(_ name: String) -> String? {
            switch fields[name] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            case let other?: return other.jsonText
            }
        }
        var attempts: Int?
        switch fields["attempts"] {
        case .integer(let number)?: attempts = Int(clamping: number)
        case .number(let number)? where number.isFinite: attempts = Int(number)
        case .string(let text)?: attempts = Int(text)
        default: attempts = nil
        }
        var result: JSONValue?  // absent and null alike mean no result
        if let value = fields["result"], value != .null { result = value }
        let update = StatusUpdate(
            jobId: jobId, status: status, userId: userId, timestamp: fields["timestamp"]?.stringValue,
            result: result, error: text("error"),
            details: text("details"), attempts: attempts)
        return (update, fields)
    }

    /// The update as event data: the message's own fields (so unknown ones pass through),
    /// the normalized known ones, a `timestamp` if the agent sent none, and `eventId`.
    public func eventData(fields: [String: JSONValue] = [:], eventId: EventID, routedAt: Timestamp) -> JSONValue {
        var data = fields
        data["jobId"] = .string(jobId)
        data["status"] = .string(status.rawValue)
        data["userId"] = .string(userId)
        data["timestamp"] = .string(timestamp ?? routedAt.iso8601)
        if let result { data["result"] = result }
        if let error { data["error"] = .string(error) }
        if let details { data["details"] = .string(details) }
        if let attempts { data["attempts"] = .integer(Int64(attempts)) }
        data["eventId"] = .string(eventId.description)
        return .object(data)
    }
}
