/// A job as stored at `agent:<type>:job:<jobId>` (SPEC §1). Field names are fixed by the
/// original system's agents; fields may be added, none renamed.
public struct JobRecord: Sendable, Hashable, Codable {
    public struct Owner: Sendable, Hashable, Codable {
        public var publicKey: String
        public init(publicKey: String) { self.publicKey = publicKey }
    }

    public struct HistoryEntry: Sendable, Hashable, Codable {
        public var status: JobStatus
        public var timestamp: String
        public init(status: JobStatus, timestamp: String) {
            self.status = status
            self.timestamp = timestamp
        }
    }

    public var jobId: String
    public var type: String
    public var status: JobStatus
    public var user: Owner
    public var payload: JSONValue
    /// ISO-8601 with milliseconds, UTC (`2025-11-11T10:30:00.000Z`).
    public var createdAt: String
    public var updatedAt: String
    public var history: [HistoryEntry]
    public var result: JSONValue?
    public var error: String?
    public var attempts: Int

    public init(
        jobId: String, type: String, status: JobStatus = .created, user: Owner, payload: JSONValue,
        createdAt: String, updatedAt: String, history: [HistoryEntry], result: JSONValue? = nil,
        error: String? = nil, attempts: Int = 0
    ) {
        self.jobId = jobId
        self.type = type
        self.status = status
        self.user = user
        self.payload = payload
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.history = history
        self.result = result
        self.error = error
        self.attempts = attempts
    }

    private enum CodingKeys: String, CodingKey {
        case jobId, type, status, user, payload, createdAt, updatedAt, history, result, error, attempts
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        jobId = try c.decode(String.self, forKey: .jobId)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "rebalance"
        status = try c.decode(JobStatus.self, forKey: .status)
        user = try c.decode(Owner.self, forKey: .user)
        payload = try c.decodeIfPresent(JSONValue.self, forKey: .payload) ?? .object([:])
        createdAt = try c.decodeIfPresent(String.self, forKey: .createdAt) ?? ""
        updatedAt = try c.decodeIfPresent(String.self, forKey: .updatedAt) ?? createdAt
        history = try c.decodeIfPresent([HistoryEntry].self, forKey: .history) ?? []
        result = try c.decodeIfPresent(JSONValue.self, forKey: .result)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        attempts = try c.decodeIfPresent(Int.self, forKey: .attempts) ?? 0
    }

    /// Encodes `result` and `error` as explicit `null`s, as the original system stored them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobId, forKey: .jobId)
        try c.encode(type, forKey: .type)
        try c.encode(status, forKey: .status)
        try c.encode(user, forKey: .user)
        try c.encode(payload, forKey: .payload)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(history, forKey: .history)
        try c.encode(result ?? .null, forKey: .result)
        if let error { try c.encode(error, forKey: .error) } else { try c.encodeNil(forKey: .error) }
        try c.encode(attempts, forKey: .attempts)
    }
}
