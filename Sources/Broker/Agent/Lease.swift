import Logging
import Synchronization

extension JobNames {
    /// The lease of a job taken by a reliable agent: `agent:rebalance:lease:<jobId>`. It exists
    /// (with a TTL of ``AgentConfiguration/leaseLifetime``, renewed while the job runs) exactly
    /// as long as some agent shows a sign of life for the job.
    public func lease(_ jobId: String) -> String { "\(prefix):\(type):lease:\(jobId)" }
}

/// The leases of the jobs an agent is running: set once right after a job is taken, renewed
/// together in one pipelined round trip every ``AgentConfiguration/leaseRenewalInterval``,
/// deleted with the acknowledgement.
///
/// One renewal loop per agent instead of one timer task per job keeps the per-job cost to
/// storing the id in the worker's slot and clearing it, however many jobs run.
final class LeaseKeeper: Sendable {
    private let broker: any Broker
    private let names: JobNames
    private let timeout: Duration
    private let interval: Duration
    private let holder: [UInt8]
    private let logger: Logger
    /// The job id each worker runs (by worker number), `nil` while it runs none. The same id
    /// may be in two slots after a reap; it is renewed once.
    private let held: Mutex<[String?]>

    init(broker: any Broker, configuration: AgentConfiguration, logger: Logger) {
        self.broker = broker
        self.names = configuration.names
        self.timeout = configuration.leaseLifetime
        self.interval = configuration.leaseRenewalInterval
        self.holder = Array(configuration.agentId.utf8)
        self.logger = logger
        self.held = Mutex(Array(repeating: nil, count: configuration.concurrency))
    }

    /// The command that takes the lease at `key` (`names.lease(jobId)`; plain `SET … PX`).
    func acquireCommand(key: String) -> BrokerCommand {
        .set(key: key, value: holder, expiry: .after(timeout), condition: .always)
    }

    /// Starts renewing the lease of `jobId`, run by worker number `worker`.
    func hold(_ jobId: String, worker: Int) {
        held.withLock { $0[worker] = jobId }
    }

    /// Stops renewing the lease of worker `worker`'s job (acknowledged or abandoned).
    func release(worker: Int) {
        held.withLock { $0[worker] = nil }
    }

    /// The distinct ids held now.
    private var heldIds: [String] {
        Array(Set(held.withLock { $0.compactMap { $0 } }))
    }

    /// How many leases are held now.
    var count: Int { heldIds.count }

    /// Renews every held lease each interval until cancelled.
    func run() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            await renewAll()
        }
    }

    /// Renews the held leases in one pipeline. `SET … XX` never recreates a lease that was
    /// just deleted by the acknowledgement or lapsed and was reaped.
    func renewAll() async {
        let ids = heldIds
        guard !ids.isEmpty else { return }
        let commands = ids.map {
            BrokerCommand.set(key: names.lease($0), value: holder, expiry: .after(timeout), condition: .ifPresent)
        }
        do {
            let replies = try await broker.execute(commands, atomically: false)
            // A refusal (Redis at maxmemory answers OOM) is not a lapse: the lease is as it was.
            if let refusal = replies.lazy.compactMap({ if case .error(let error) = $0 { error } else { nil } }).first {
                logger.warning("could not renew leases", metadata: ["error": "\(refusal)", "leases": "\(ids.count)"])
            }
            for (id, reply) in zip(ids, replies) where (try? reply.isOK()) != true {
                if case .error = reply { continue }
                // Either acknowledged meanwhile (fine) or lapsed: then the reaper may have put
                // the job back and it can run twice, which at-least-once delivery allows.
                let stillHeld = held.withLock { $0.contains(id) }
                if stillHeld {
                    logger.warning("lease lapsed while the job ran; it may run again elsewhere", metadata: ["jobId": "\(JobID.loggable(id))"])
                }
            }
        } catch {
            logger.warning("could not renew leases", metadata: ["error": "\(error)", "leases": "\(ids.count)"])
        }
    }
}
