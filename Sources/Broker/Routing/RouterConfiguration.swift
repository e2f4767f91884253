/// How a ``Router`` is set up.
public struct RouterConfiguration: Sendable {
    /// The job types whose status channels the router listens to (several per process).
    public var jobTypes: [JobNames]
    /// Users' event logs: capacity (default 100) and lifetime (24 h).
    public var eventLog: EventLog
    /// Buffer of the status-channel subscription. Generous: a dropped status is a lost event.
    public var statusBuffering: SubscriptionBuffering
    /// Buffer of the `ws:emit` subscription.
    public var emitBuffering: SubscriptionBuffering
    /// How many status updates are applied at once. Updates of one user always go through
    /// the same lane, in arrival order, so a job's events keep their lifecycle order. Each lane
    /// applies whatever queued while it was busy in one transaction, so a few lanes carry a
    /// high rate; more lanes mean more transactions (and Redis connections) in flight, which
    /// on a small machine cost more in thread switches than they gain (default 4).
    public var statusLanes: Int
    /// Wait before subscribing again after a subscription failed.
    public var resubscribeDelay: Duration
    /// The shortest time between two writes of the delivered watermarks: a busy node writes
    /// the watermarks of every user it delivered to meanwhile in one round trip per interval
    /// instead of one per event. A watermark lagging by this much costs at most a repeat of
    /// those events on a *new* connection of the user on another node, never a loss (this
    /// node counts its own unwritten watermark when it replays to a new connection).
    public var watermarkInterval: Duration
    /// How long a lane keeps trying a batch of status updates while the broker is away (a lost
    /// connection, no answer in time) or refuses writes for memory, before giving it up.
    /// Applying is idempotent, so a batch whose reply was lost is safely applied again; the
    /// lane's later updates wait meanwhile (in the status subscription's buffer), so each
    /// user's order is kept. By default as long as a job record lives (24 h): a status given
    /// up is lost for good (its agent heard it delivered), so the lane waits out any outage;
    /// graceful shutdown still ends the wait.
    public var applyRetryLimit: Duration

    public init(
        jobTypes: [JobNames] = [JobNames()], eventLog: EventLog = EventLog(),
        statusBuffering: SubscriptionBuffering = .dropNewest(capacity: 100_000),
        emitBuffering: SubscriptionBuffering = .dropNewest(capacity: 100_000), statusLanes: Int = 4,
        resubscribeDelay: Duration = .seconds(1), watermarkInterval: Duration = .milliseconds(50),
        applyRetryLimit: Duration = JobNames.recordLifetime
    ) {
        self.jobTypes = jobTypes
        self.eventLog = eventLog
        self.statusBuffering = statusBuffering
        self.emitBuffering = emitBuffering
        self.statusLanes = max(1, statusLanes)
        self.resubscribeDelay = resubscribeDelay
        self.watermarkInterval = max(.zero, watermarkInterval)
        self.applyRetryLimit = max(.zero, applyRetryLimit)
    }
}

/// A node's router figures, for `/health`, `/api/v1/stats` and `/metrics`.
public struct RouterStats: Sendable, Hashable {
    /// Sessions, rooms and users on this node.
    public var counts: SessionCounts
    /// Session totals on this node.
    public var sessions: SessionCounters
    /// Channels the router is subscribed to (status channels and `ws:emit`); 0 before
    /// ``Router/run()`` has subscribed.
    public var subscriptions: Int
    /// Per job type: what its ``JobStore`` did on this node.
    public var jobs: [String: JobCounters]
    /// Messages heard on `ws:emit`.
    public var emitReceived: Int
    /// Messages on `ws:emit` that were refused (not a valid emit message).
    public var emitMalformed: Int
    /// Delivered watermarks written to the broker.
    public var watermarksWritten: Int
}

/// Errors of ``Router`` operations.
public enum RouterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// An event name must be non-empty.
    case invalidEventName

    public var description: String {
        switch self {
        case .invalidEventName: return "event name must be a non-empty string"
        }
    }
}
