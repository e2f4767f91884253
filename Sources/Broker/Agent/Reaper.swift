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
public struct Reaper: Sendable {
    let broker: any Broker
    let names: JobNames
    let interval: Duration
    let grace: Duration
    let logger: Logger

    /// Ids seen without a lease, with when they were first seen so.
    private var candidates: [String: ContinuousClock.Instant] = [:]

    public init(broker: any Broker, configuration: AgentConfiguration, logger: Logger) {
        self.broker = broker
        self.names = configuration.names
        self.interval = configuration.reapInterval
        self.grace = configuration.takeGrace
        self.logger = logger
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
        for id in due where try await putBack(id) {
            reaped += 1
            logger.info("job lease lapsed; put back on the queue", metadata: ["jobId": "\(JobID.loggable(id))"])
        }
        return reaped
    }

    /// Puts `id` back on the queue if it is still taken and still has no lease.
    /// - Returns: whether this call put it back.
    public func putBack(_ id: String) async throws -> Bool {
        let processing = names.processing
        let lease = names.lease(id)
        let value = Array(id.utf8)
        return try await broker.transaction(watching: [processing, lease]) {
            let taken = try await broker.range(of: processing)
            guard taken.contains(value), try await broker.get(lease) == nil else {
                return Transaction(commands: [], value: false)
            }
            return Transaction(
                commands: [
                    .remove(value: value, count: -1, queue: processing),
                    .push([value], end: .tail, queue: names.queue),
                ],
                value: true
            )
        }.value
    }
}
