/// Counters of what an ``Agent`` has done since it started.
public struct AgentStatistics: Sendable, Hashable {
    /// Ids taken from the queue.
    public var taken = 0
    /// Jobs finished with `done`.
    public var done = 0
    /// Jobs finished with `error`.
    public var failed = 0
    /// Attempts retried after a transient failure.
    public var retries = 0
    /// Ids dropped because their record was gone or unreadable.
    public var skipped = 0
    /// Jobs given up unfinished (cancellation, broker unreachable); the reaper re-queues them.
    public var abandoned = 0

    /// Status updates no subscriber heard when first published that one heard later.
    public var statusesRepublished = 0
    /// Status updates no subscriber heard within the time they are republished for.
    public var statusesUnheard = 0
    public init() {}
}
