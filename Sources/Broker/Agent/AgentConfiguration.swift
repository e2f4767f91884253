/// How an ``Agent`` takes, runs and guards jobs.
public struct AgentConfiguration: Sendable {
    /// The queue, processing list, status channel and record keys of the job type served.
    public var names: JobNames
    /// How many jobs run at once (workers).
    public var concurrency: Int
    /// How long a taken job may go without its agent's sign of life (a lease renewal) before
    /// the reaper puts it back on the queue for another agent.
    public var visibilityTimeout: Duration
    /// How long a lease lives unless renewed: the visibility timeout less the time the reaper
    /// may take to notice a lapsed one (``takeGrace`` and two ``reapInterval``s), so that a job
    /// goes back by the visibility timeout after its last sign of life, not that much later;
    /// at least half the visibility timeout.
    public var leaseLifetime: Duration
    /// How often the leases of running jobs are renewed; well under ``leaseLifetime`` so one
    /// slow renewal does not let a lease lapse.
    public var leaseRenewalInterval: Duration
    /// How often the reaper scans the processing list.
    public var reapInterval: Duration
    /// How long the reaper must see a taken id without a lease before it puts it back. Covers
    /// the moment between the move to the processing list and the lease being set, which no
    /// single broker command can close (see ``Reaper``).
    public var takeGrace: Duration
    /// How many workers wait on an empty queue at once (blocking moves); the others wait for
    /// a turn in this process. On Redis each waiting take holds a connection of its own, so
    /// this, not ``concurrency``, bounds an agent's connections: a busy worker takes its next
    /// job in its acknowledgement's round trip and needs no turn.
    public var waitingTakes: Int = 4
    /// Retries of transiently failing jobs.
    public var retry: RetryPolicy
    /// How many times the reaper puts a job back after its lease lapsed. When the lease of a job
    /// put back that often lapses again, the job fails instead (`error`, with `attempts`: the
    /// runs it had): a job that crashes or stalls every agent that runs it would otherwise do
    /// so forever. `nil`: always put back.
    public var maxLapses: Int? = 5
    /// Written into each lease so an operator can tell which agent holds a job.
    public var agentId: String
    /// How long a status update that no subscriber heard (no gateway listening when it was
    /// published) is published again, with backoff, before it is given up.
    public var unheardStatusLifetime: Duration = .seconds(60)
    /// The backoff between those publications.
    public var unheardStatusRetry = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(5))

    /// - Parameters:
    ///   - visibilityTimeout: must be positive. The reaper scans every quarter of it, at most
    ///     every second; its take grace is a tenth, between one and five seconds; leases live
    ///     what is left of it once those are taken off (see ``leaseLifetime``) and are renewed
    ///     every third of that.
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
        self.reapInterval = min(visibility / 4, .seconds(1))
        // The gap it covers is one round trip, but a loaded machine can stall a task for far
        // longer; a reap inside the gap is not a loss, only a second run, so err on the long side.
        self.takeGrace = min(max(visibility / 10, .seconds(1)), .seconds(5))
        self.leaseLifetime = max(visibility - takeGrace - reapInterval * 2, visibility / 2)
        self.leaseRenewalInterval = leaseLifetime / 3
        self.retry = retry
        self.agentId = agentId ?? AgentConfiguration.makeAgentId()
    }

    /// A random id for this agent process, e.g. `agent-k3x9q2`.
    static func makeAgentId() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "agent-" + String((0..<8).map { _ in alphabet.randomElement()! })
    }
}
