/// How an ``Agent`` takes, runs and guards jobs.
public struct AgentConfiguration: Sendable {
    /// The queue, processing list, status channel and record keys of the job type served.
    public var names: JobNames
    /// How many jobs run at once (workers).
    public var concurrency: Int
    /// How long a taken job may go without its agent's sign of life (a lease renewal) before
    /// the reaper puts it back on the queue for another agent.
    public var visibilityTimeout: Duration
    /// How often the leases of running jobs are renewed; well under ``visibilityTimeout`` so
    /// one slow renewal does not let a lease lapse.
    public var leaseRenewalInterval: Duration
    /// How often the reaper scans the processing list.
    public var reapInterval: Duration
    /// How long the reaper must see a taken id without a lease before it puts it back. Covers
    /// the moment between the move to the processing list and the lease being set, which no
    /// single broker command can close (see ``Reaper``).
    public var takeGrace: Duration
    /// Retries of transiently failing jobs.
    public var retry: RetryPolicy
    /// Written into each lease so an operator can tell which agent holds a job.
    public var agentId: String
    /// How long a status update that no subscriber heard (no gateway listening when it was
    /// published) is published again, with backoff, before it is given up.
    public var unheardStatusLifetime: Duration = .seconds(60)
    /// The backoff between those publications.
    public var unheardStatusRetry = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(5))

    /// - Parameters:
    ///   - visibilityTimeout: must be positive; the renewal interval defaults to a third of it,
    ///     the reap interval to a quarter, the take grace to a quarter but at least one second.
    public init(
        names: JobNames = JobNames(),
        concurrency: Int = 1,
        visibilityTimeout: Duration = .seconds(30),
        retry: RetryPolicy = RetryPolicy(),
        agentId: String? = nil
    ) {
        self.names = names
        self.concurrency = max(1, concurrency)
        let visibility = visibilityTimeout > .zero ? visibilityTimeout : .seconds(30)
        self.visibilityTimeout = visibility
        self.leaseRenewalInterval = visibility / 3
        self.reapInterval = visibility / 4
        // The gap it covers is one round trip, but a loaded machine can stall a task for far
        // longer; a reap inside the gap is not a loss, only a second run, so err on the long side.
        self.takeGrace = max(visibility / 4, .seconds(1))
        self.retry = retry
        self.agentId = agentId ?? AgentConfiguration.makeAgentId()
    }

    /// A random id for this agent process, e.g. `agent-k3x9q2`.
    static func makeAgentId() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "agent-" + String((0..<8).map { _ in alphabet.randomElement()! })
    }
}
