/// The names a job type uses on the broker (SPEC §1). With the defaults (`agent`, `rebalance`):
/// `agent:rebalance:jobs`, `agent:rebalance:job:<id>`, `agent:rebalance:status`,
/// `agent:rebalance:processing`.
public struct JobNames: Sendable, Hashable {
    public var prefix: String
    public var type: String

    public init(prefix: String = "agent", type: String = "rebalance") {
        self.prefix = prefix
        self.type = type
    }

    /// The list of waiting job ids (pushed with LPUSH, so `BRPOP` takes the oldest first).
    public var queue: String { "\(prefix):\(type):jobs" }
    /// The list of ids taken by a reliable agent and not yet acknowledged.
    public var processing: String { "\(prefix):\(type):processing" }
    /// The pub/sub channel agents publish status updates on.
    public var statusChannel: String { "\(prefix):\(type):status" }
    /// The key of a job's record.
    public func record(_ jobId: String) -> String { "\(prefix):\(type):job:\(jobId)" }
    /// The event name for a status, e.g. `rebalance:processing`.
    public func event(_ status: JobStatus) -> String { "\(type):\(status.rawValue)" }

    /// The key of a user's recent events (`ws:pending:user:<userId>`).
    public static func eventLog(userId: String) -> String { "ws:pending:user:\(userId)" }
    /// The room every connection of a user joins.
    public static func userRoom(_ userId: String) -> String { "user:\(userId)" }
    /// The channel other services publish on to reach users or rooms (SPEC §3.4).
    public static let emitChannel = "ws:emit"
    /// How long job records and event logs live.
    public static let recordLifetime: Duration = .seconds(86_400)
}
