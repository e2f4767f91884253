/// A status update as agents publish it on `agent:<type>:status` (SPEC §1).
/// `jobId`, `status` and `userId` are required; the rest is optional.
public struct StatusUpdate: Sendable, Hashable, Codable {
    public var jobId: String
    public var status: JobStatus
    public var userId: String
    public var timestamp: String?
    public var result: JSONValue?
    public var error: String?
    public var details: String?
    public var attempts: Int?

    public init(
        jobId: String, status: JobStatus, userId: String, timestamp: String? = nil, result: JSONValue? = nil,
        error: String? = nil, details: String? = nil, attempts: Int? = nil
    ) {
        self.jobId = jobId
        self.status = status
        self.userId = userId
        self.timestamp = timestamp
        self.result = result
        self.error = error
        self.details = details
        self.attempts = attempts
    }
}
