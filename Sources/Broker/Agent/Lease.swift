import Logging
import Synchronization

extension JobNames {
    /// The lease of a job taken by a reliable agent: `agent:rebalance:lease:<jobId>`. It exists
    /// (with a TTL of the visibility timeout, renewed while the job runs) exactly as long as
    /// some agent shows a sign of life for the job.
    public func lease(_ jobId: String) -> String { "\(prefix):\(type):lease:\(jobId)" }
}

/// The leases of the jobs an agent is running: set once right after a job is taken, renewed
/// together in one pipelined round trip every ``AgentConfiguration/leaseRenewalInterval``,
/// deleted with the acknowledgement.
///
/// One renewal loop per agent instead of one timer task per job keeps the per-job cost to a
/// dictionary insert and remove, however many jobs run.
final class LeaseKeeper: Sendable {
    private let broker: any Broker
    private let names: JobNames
    private let timeout: Duration
    private let interval: Duration
    private let holder: [UInt8]
    private let logger: Logger
    /// Job ids running here, counted: the same id may run twice after a reap.
    private let held = Mutex<[String: Int]>([:])

    init(broker: any Broker, configuration: AgentConfiguration, logger: Logger) {
        self.broker = broker
        self.names = configuration.names
        self.timeout = configuration.visibilityTimeout
        self.interval = configuration.leaseRenewalInterval
        self.holder = Array(configuration.agentId.utf8)
        self.logger = logger
    }

    /// The command that takes the lease of `jobId` (plain `SET … PX`).
    func acquireCommand(for jobId: String) -> BrokerCommand {
        .set(key: names.lease(jobId), value: holder, expiry: .after(timeout), condition: .always)
    }

    /// Starts renewing the lease of `jobId`.
    func hold(_ jobId: String) {
        held.withLock { $0[jobId, default: 0] += 1 }
    }

    /// Stops renewing the lease of `jobId` (it has been acknowledged or abandoned).
    func release(_ jobId: String) {
        held.withLock { held in
            if let count = held[jobId], count > 1 { held[jobId] = count - 1 } else { held[jobId] = nil }
        }
    }

    /// How many leases are held now.
    var count: Int { held.withLock { $0.count } }

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
        let ids = held.withLock { Array($0.keys) }
        guard !ids.isEmpty else { return }
        let commands = ids.map {
            BrokerCommand.set(key: names.lease($0), value: holder, expiry: .after(timeout), condition: .ifPresent)
        }
        do {
            let replies = try await broker.execute(commands, atomically: false)
            for (id, reply) in zip(ids, replies) where (try? reply.isOK()) != true {
                // Either acknowledged meanwhile (fine) or lapsed: then the reaper may have put
                // the job back and it can run twice, which at-least-once delivery allows.
                let stillHeld = held.withLock { $0[id] != nil }
                if stillHeld {
                    logger.warning("lease lapsed while the job ran; it may run again elsewhere", metadata: ["jobId": "\(id)"])
                }
            }
        } catch {
            logger.warning("could not renew leases", metadata: ["error": "\(error)", "leases": "\(ids.count)"])
        }
    }
}
