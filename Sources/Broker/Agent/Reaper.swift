public import Logging

/// Puts back on the queue the taken jobs whose agent stopped showing a sign of life.
///
/// Every ``AgentConfiguration/reapInterval`` it reads the processing list and the leases of the
/// ids in it (two round trips). An id with no lease is a candidate; it is put back once the
/// reaper has seen it lease-less for at least ``AgentConfiguration/takeGrace``. The grace
/// exists because taking a job is two steps (`BLMOVE`, then `SET` of the lease) that no single
/// command can join without a script: an id found just between them must not be reaped. The
/// first sighting lives in this reaper's memory only; a restarted reaper starts the wait anew,
/// which can delay a reap but never lose a job.
///
/// Putting back is an optimistic transaction watching the processing list and the lease: it
/// re-reads both and commits `LREM` + `RPUSH` (onto the tail, the end agents take from, so the
/// job runs next) only if the id is still taken and still lease-less. An acknowledgement or
/// another reaper's put-back changes the processing list, so a concurrent decision conflicts,
/// re-reads, and finds nothing to do: each lapsed job goes back exactly once, and an
/// acknowledged job never does. Several agents may therefore reap the same list safely.
///
/// Each put-back is counted on the job (``JobNames/lapses(_:)``, in the same transaction). A
/// job that has been put back ``AgentConfiguration/maxLapses`` times is not put back again when
/// its lease lapses once more: the job itself most likely kills or stalls every agent that runs
/// it, and running it forever would take agent after agent down with it. It leaves the
/// processing list and its `error` status (with `attempts`, the runs it had) is published.
public struct Reaper: Sendable {
    let broker: any Broker
    let names: JobNames
    let interval: Duration
    let grace: Duration
    let maxLapses: Int?
    let logger: Logger
    /// Where an `error` status no gateway heard goes to be published again (the agent's).
    let unheard: UnheardStatuses?

    /// Ids seen without a lease, with when they were first seen so.
    private var candidates: [String: ContinuousClock.Instant] = [:]

    public init(broker: any Broker, configuration: AgentConfiguration, logger: Logger) {
        self.init(broker: broker, configuration: configuration, logger: logger, unheard: nil)
    }

    init(broker: any Broker, configuration: AgentConfiguration, logger: Logger, unheard: UnheardStatuses?) {
        self.broker = broker
        self.names = configuration.names
        self.interval = configuration.reapInterval
        self.grace = configuration.takeGrace
        self.maxLapses = configuration.maxLapses
        self.logger = logger
        self.unheard = unheard
    }

    /// Scans every interval until cancelled.
    public mutating func run() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            do {
                let reaped = try await scan()
                if reaped > 0 { logger.notice("put lapsed jobs back on the queue", metadata: ["count": "\(reaped)"]) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("reaper scan failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One scan: notes lease-less ids and puts back those lease-less for the grace period.
    /// - Returns: how many ids this scan put back on the queue.
    @discardableResult
    public mutating func scan(now: ContinuousClock.Instant = .now) async throws -> Int {
        var seen = Set<String>()
        let ids = try await broker.range(of: names.processing)
            .map { String(decoding: $0, as: UTF8.self) }
            .filter { seen.insert($0).inserted }
        guard !ids.isEmpty else {
            candidates.removeAll()
            return 0
        }
        let ttls = try await broker.execute(ids.map { .timeToLive(key: names.lease($0)) }, atomically: false)
        var next: [String: ContinuousClock.Instant] = [:]
        var due: [String] = []
        for (id, reply) in zip(ids, ttls) where (try? reply.integer()) == -2 {
            let firstSeen = candidates[id] ?? now
            if now - firstSeen >= grace { due.append(id) } else { next[id] = firstSeen }
        }
        candidates = next
        var reaped = 0
        for id in due {
            switch try await reap(id) {
            case .none: continue
            case .putBack(let lapses):
                logger.info(
                    "job lease lapsed; put back on the queue",
                    metadata: ["jobId": "\(JobID.loggable(id))", "lapses": "\(lapses)"])
            case .failed(let runs):
                logger.error(
                    "job lease lapsed again; the job failed instead of going back (it stopped every agent that ran it)",
                    metadata: ["jobId": "\(JobID.loggable(id))", "runs": "\(runs)"])
            }
            reaped += 1
        }
        return reaped
    }

    /// What ``reap(_:)`` did with a lapsed job.
    public enum Outcome: Sendable, Equatable {
        /// Nothing: the job was no longer taken, or had a lease again.
        case none
        /// Put back on the queue; `lapses` is how many times in all.
        case putBack(lapses: Int)
        /// Taken off the processing list and reported failed after `runs` runs.
        case failed(runs: Int)
    }

    /// Takes `id` off the processing list if it is still taken and still has no lease: back onto
    /// the queue, or, past ``AgentConfiguration/maxLapses``, failed with an `error` status.
    public func reap(_ id: String) async throws -> Outcome {
        let processing = names.processing
        let lease = names.lease(id)
        let lapsesKey = names.lapses(id)
        let value = Array(id.utf8)
        let (outcome, replies) = try await broker.transaction(watching: [processing, lease, lapsesKey]) {
            let taken = try await broker.range(of: processing)
            guard taken.contains(value), try await broker.get(lease) == nil else {
                return Transaction(commands: [], value: (Outcome.none, nil as [UInt8]?))
            }
            let lapses = try await broker.get(lapsesKey).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
            if let maxLapses, lapses >= maxLapses {
                let status = try await failureStatus(id, runs: lapses + 1)
                var commands: [BrokerCommand] = [
                    .remove(value: value, count: -1, queue: processing), .delete(keys: [lapsesKey]),
                ]
                if let status { commands.append(.publish(payload: status, channel: names.statusChannel)) }
                return Transaction(commands: commands, value: (Outcome.failed(runs: lapses + 1), status))
            }
            return Transaction(
                commands: [
                    .remove(value: value, count: -1, queue: processing),
                    .push([value], end: .tail, queue: names.queue),
                    .increment(key: lapsesKey, by: 1),
                    .expire(key: lapsesKey, after: JobNames.recordLifetime),
                ],
                value: (Outcome.putBack(lapses: lapses + 1), nil)
            )
        }
        switch outcome {
        case (.failed, nil):
            logger.warning(
                "failed job has no record with a usable owner; no status published", metadata: ["jobId": "\(JobID.loggable(id))"])
        case (.failed, let status?) where replies.last == .integer(0):
            unheard?.add([status], jobId: id)  // no gateway listened: published again until one does
        default: break
        }
        return outcome.0
    }

    /// The `error` status of job `id`, failed after `runs` runs, addressed to the owner its
    /// record names; `nil` when the record is gone or names no usable owner (nobody to tell).
    private func failureStatus(_ id: String, runs: Int) async throws -> [UInt8]? {
        guard let bytes = try await broker.get(names.record(id)),
            let record = try? JobRecord.decodeForAgent(bytes, queuedId: id),
            JobID.isAcceptable(record.user.publicKey)
        else { return nil }
        let update = StatusUpdate(
            jobId: id, status: .error, userId: record.user.publicKey,
            error: "Job abandoned: its agent stopped showing a sign of life while running it, \(runs) times",
            attempts: runs)
        return update.jsonBytesForAgent(stampedAt: .now())
    }
}

extension JobNames {
    /// How many times the reaper has put job `jobId` back after its lease lapsed:
    /// `agent:rebalance:lapses:<jobId>`, an integer that lives as long as a record.
    public func lapses(_ jobId: String) -> String { "\(prefix):\(type):lapses:\(jobId)" }
}
