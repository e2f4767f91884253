public import Logging
import ServiceLifecycle
import Synchronization

/// One job type's lifecycle on a broker (SPEC §1): creates jobs, reads them, and applies the
/// status updates agents publish, routing each applied one to the owner's event sequence.
///
/// Every write is one atomic batch: a new job's record (TTL 24 h), its id (LPUSH onto the
/// queue) and its `created` event go together or not at all; an applied status changes the
/// record and appends its event together. Updates go through an optimistic transaction that
/// watches the record and the user's event counter, so when N gateway nodes hear the same
/// update, exactly one applies it, appends it to `history` and emits its event; the others
/// find it applied (``StatusDropReason/duplicate``).
///
/// Writes are group-committed: creations that arrive while one is being committed go
/// together in the next transaction (``create(payload:for:)``), and the router hands over each
/// lane's queued updates in one ``apply(_:)``. A batch costs the round trips of one job
/// (on Redis: WATCH, one pipelined read, MULTI/EVAL/EXEC), and the callers of one node never
/// conflict with each other over a user's event counter.
///
/// ## A status for a job without a record
/// When the record does not exist (never created by a gateway, or expired after 24 h), there
/// is nothing to update and no owner to check against. The update is still routed to the
/// user it names, once across all nodes (a marker key `<prefix>:<type>:routed:<jobId>:<status>`
/// with a 24 h TTL records that it was), and counted as ``JobCounters/routedWithoutRecord``:
/// an agent that finishes a job whose record lapsed still reaches its user, and anyone who
/// can publish on the status channel could equally publish on `ws:emit`, so refusing would
/// protect nothing. A record other software wrote in a shape this store does not read (a
/// member of another type, no status) is treated alike, and left as written, provided it
/// names an owner (`user.publicKey`, all an agent needs to run it) and the update names the
/// same one; without a readable owner the update fails (``JobError/corruptRecord(_:)``).
///
/// The store holds `any Broker` because the backend is chosen at run time (memory or Redis);
/// the existential costs nothing next to a round trip.
public final class JobStore: Sendable {
    /// The broker everything is stored on.
    public let broker: any Broker
    /// The names of this job type (`agent:rebalance:…`).
    public let names: JobNames
    /// Where the events of job lifecycles go.
    public let eventLog: EventLog
    let logger: Logger
    let stats = Mutex(JobCounters())
    /// Keeps a flood of bad or failing updates from flooding the log (all are counted).
    let logThrottle = LogThrottle()
    let now: @Sendable () -> Timestamp
    let creations = Combiner<NewJob, JobRecord>(maxBatch: 256)

    /// - Parameters:
    ///   - clock: the wall clock for ids and timestamps (injectable for tests).
    public init(
        broker: any Broker, names: JobNames = JobNames(), eventLog: EventLog = EventLog(),
        logger: Logger = Logger(label: "switchboard.jobs"), clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.broker = broker
        self.names = names
        self.eventLog = eventLog
        self.logger = logger
        self.now = clock
    }

    /// Counts of what this store did (this node only).
    public var counters: JobCounters { stats.withLock { $0 } }

    // MARK: Creating and reading

    /// Creates a job for `userId`: stores its record (TTL 24 h), queues its id (LPUSH, so a
    /// `BRPOP` agent takes the oldest first) and emits `<type>:created` to the user — all in
    /// one atomic transaction, shared with the creations other callers make at the same moment.
    /// If the caller is cancelled while its job is already on its way, the job may still be
    /// created.
    ///
    /// - Parameter payload: a JSON object, stored as the record's `payload`.
    /// - Throws: ``JobError`` for a non-object payload or an unusable user id; a
    ///   ``BrokerError`` if the broker fails (then nothing was stored).
    @discardableResult
    public func create(payload: JSONValue, for userId: String) async throws -> JobRecord {
        guard payload.isObject else { throw JobError.invalidPayload }
        guard JobID.isAcceptable(userId) else { throw JobError.invalidUser }
        let time = now()
        let jobId = JobID.make(at: time)
        let stamp = time.iso8601
        let record = JobRecord(
            jobId: jobId, type: names.type, status: .created, user: .init(publicKey: userId), payload: payload,
            createdAt: stamp, updatedAt: stamp, history: [.init(status: .created, timestamp: stamp)])
        let job = NewJob(record: record, bytes: StoredRecord(record: record).bytes, time: time)
        let created = try await creations.submit(job) { batch in await self.commitCreations(batch) }
        stats.withLock { $0.created += 1 }
        return created
    }

    /// The record of `jobId`, or `nil` if it does not exist (or expired).
    /// - Throws: ``JobError/corruptRecord(_:)`` if the stored value is not a job record.
    public func record(_ jobId: String) async throws -> JobRecord? {
        guard JobID.isAcceptable(jobId) else { return nil }
        return try await broker.get(names.record(jobId)).map { try Self.decode($0, jobId: jobId).record }
    }

    /// The record of `jobId` as `userId` may see it: never another user's content.
    /// - Throws: ``JobError/corruptRecord(_:)`` if the stored value is not a job record and
    ///   names no owner.
    public func lookup(_ jobId: String, for userId: String) async throws -> JobLookup {
        try await lookupWithJSON(jobId, for: userId).lookup
    }

    /// ``lookup(_:for:)`` with the JSON to answer the owner with (`nil` for anyone else): the
    /// record in SPEC §1's form with the members other software added (SPEC §1 lets fields be
    /// added, and the original answered the whole stored object), or, for a value not in job
    /// format, as written.
    package func lookupWithJSON(_ jobId: String, for userId: String) async throws -> (lookup: JobLookup, json: [UInt8]?) {
        guard JobID.isAcceptable(jobId), let bytes = try await broker.get(names.record(jobId)) else { return (.notFound, nil) }
        if let stored = StoredRecord(bytes: bytes) {
            return stored.record.user.publicKey == userId ? (.found(stored.record), stored.bytes) : (.notOwner, nil)
        }
        // Written by other software in a shape we do not read, but the agent runs it for its
        // owner, whose statuses are routed (see "A status for a job without a record").
        guard let owner = StoredRecord.owner(in: bytes) else { throw JobError.corruptRecord(jobId) }
        return owner == userId ? (.foundAsWritten(bytes), bytes) : (.notOwner, nil)
    }

    /// Whether `userId` may follow `jobId` (`{"type":"subscribe","jobId"}` on `/ws`): the job
    /// exists and is theirs.
    public func canFollow(jobId: String, userId: String) async throws -> Bool {
        switch try await lookup(jobId, for: userId) {
        case .found, .foundAsWritten: return true
        case .notFound, .notOwner: return false
        }
    }

    /// How many job ids wait in the queue and how many are taken but not acknowledged (for
    /// `/api/v1/stats` and `/metrics`); one pipelined round trip.
    public func queueDepth() async throws -> (waiting: Int, processing: Int) {
        let replies = try await broker.execute([.length(queue: names.queue), .length(queue: names.processing)], atomically: false)
        return (Int(try replies[0].integer()), Int(try replies[1].integer()))
    }

    // MARK: Status updates

    /// Handles one message from the status channel: parses, validates and applies it. Never
    /// throws: whatever goes wrong is counted, logged and reported in the outcome.
    @discardableResult
    public func handle(statusMessage bytes: [UInt8]) async -> StatusOutcome {
        switch receive(statusMessage: bytes) {
        case .success(let parsed): return await applyReporting([parsed])[0]
        case .failure(let error): return .dropped(.invalid(error))
        }
    }

    /// Counts and parses a status message; an invalid one is counted and logged.
    func receive(statusMessage bytes: [UInt8]) -> Result<(update: StatusUpdate, fields: [String: JSONValue]), StatusMessageError> {
        stats.withLock { $0.statusReceived += 1 }
        do {
            return .success(try StatusUpdate.parse(bytes))
        } catch {
            stats.withLock { $0.count(.invalid(error)) }
            logThrottle.log(
                "malformed", .warning, "dropped status message",
                metadata: ["reason": "\(error)", "channel": "\(names.statusChannel)", "message": "\(Self.preview(bytes))"],
                to: logger)
            return .failure(error)
        }
    }

    /// ``apply(_:)`` with broker failures counted and logged instead of thrown. While the
    /// broker is away or out of memory (``BrokerError/isTransient``) the updates are tried
    /// again, with backoff (50 ms doubling to 2 s), for up to `retryLimit`: applying is
    /// idempotent, so updates whose commit went through but whose reply was lost are found
    /// applied and not repeated. Graceful shutdown ends the retries (other nodes, hearing the
    /// same updates, apply them).
    func applyReporting(
        _ updates: [(update: StatusUpdate, fields: [String: JSONValue])], retryingFor retryLimit: Duration = .zero
    ) async -> [StatusOutcome] {
        let clock = ContinuousClock()
        let deadline = clock.now + retryLimit
        var attempt = 0
        while true {
            do {
                return try await apply(updates)
            } catch let error as BrokerError
                where error.isTransient && clock.now < deadline && !Task.isCancelled && !Task.isShuttingDownGracefully
            {
                attempt += 1
                logThrottle.log(
                    "applyRetry", .warning,
                    error.code == .outOfMemory
                        ? "could not apply status updates; trying again while the broker refuses writes for memory"
                        : "could not apply status updates; trying again while the broker is away",
                    metadata: ["count": "\(updates.count)", "attempt": "\(attempt)", "error": "\(error)"], to: logger)
                let delay = RetryPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(2)).delay(afterAttempt: attempt)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } catch {
                stats.withLock { $0.failed += updates.count }
                logger.error(
                    "could not apply status updates", metadata: ["count": "\(updates.count)", "error": "\(error)"])
                return Array(repeating: .failed("\(error)"), count: updates.count)
            }
        }
    }

    /// Applies a validated update (see ``JobLifecycle/decide(_:on:alreadyRoutedWithoutRecord:now:)``)
    /// and, when it applies, emits its event `<type>:<status>` to `user:<userId>`, in one
    /// atomic transaction. Safe to call on every node for the same update.
    ///
    /// - Parameter fields: the message's members, passed through into the event data.
    /// - Throws: a ``BrokerError`` if the broker fails.
    @discardableResult
    public func apply(_ update: StatusUpdate, fields: [String: JSONValue] = [:]) async throws -> StatusOutcome {
        try await apply([(update, fields)])[0]
    }

    /// Applies several updates in one transaction, in order (a job's `processing` then `done`
    /// may be in the same batch). Outcomes are counted and logged.
    public func apply(_ updates: [(update: StatusUpdate, fields: [String: JSONValue])]) async throws -> [StatusOutcome] {
        let outcomes = try await commitUpdates(updates)
        stats.withLock { counters in
            for outcome in outcomes {
                switch outcome {
                case .applied: counters.applied += 1
                case .routedWithoutRecord: counters.routedWithoutRecord += 1
                case .dropped(let reason): counters.count(reason)
                case .failed: counters.failed += 1
                }
            }
        }
        for (item, outcome) in zip(updates, outcomes) {
            let update = item.update
            switch outcome {
            case .dropped(.wrongOwner):
                logThrottle.log(
                    "wrongOwner", .warning, "dropped status update for another user's job",
                    metadata: ["jobId": "\(JobID.loggable(update.jobId))", "userId": "\(JobID.loggable(update.userId))"],
                    to: logger)
            case .dropped(.afterFinal):
                logThrottle.log(
                    "afterFinal", .info, "dropped status update after the job finished",
                    metadata: ["jobId": "\(JobID.loggable(update.jobId))", "status": "\(update.status.rawValue)"], to: logger)
            case .dropped(.invalid(let error)):
                logThrottle.log(
                    "invalid", .warning, "dropped status update",
                    metadata: ["jobId": "\(JobID.loggable(update.jobId))", "reason": "\(error)"], to: logger)
            case .routedWithoutRecord:
                logThrottle.log(
                    "withoutRecord", .info, "routed status update for a job without a record (missing, or not in job format)",
                    metadata: ["jobId": "\(JobID.loggable(update.jobId))"], to: logger)
            case .failed(let reason):
                logThrottle.log(
                    "failed", .error, "could not apply status update",
                    metadata: ["jobId": "\(JobID.loggable(update.jobId))", "error": "\(reason)"], to: logger)
            default: break
            }
        }
        return outcomes
    }

    /// Marks that an update for a missing record was routed (once across nodes).
    func routedMarkerKey(_ update: StatusUpdate) -> String {
        let attempt = update.status == .retrying ? ":\(update.attempts ?? 0)" : ""
        return "\(names.prefix):\(names.type):routed:\(update.jobId):\(update.status.rawValue)\(attempt)"
    }

    // MARK: Encoding

    static func decode(_ bytes: [UInt8], jobId: String) throws -> StoredRecord {
        guard let stored = StoredRecord(bytes: bytes) else { throw JobError.corruptRecord(jobId) }
        return stored
    }

    /// The start of a message for a log line, quoted with control characters escaped (a
    /// newline in it must not start a forged log line).
    static func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self).debugDescription
        return bytes.count > 200 ? text + "…" : text
    }
}

/// The result of ``JobStore/lookup(_:for:)``.
public enum JobLookup: Sendable, Hashable {
    case found(JobRecord)
    /// The user's job, stored by other software in a shape this store does not read (a
    /// member of another type, no status): its JSON as written.
    case foundAsWritten([UInt8])
    /// No such job, or it expired.
    case notFound
    /// The job exists but belongs to another user (its content is not returned).
    case notOwner
}

/// What became of one status message.
public enum StatusOutcome: Sendable, Hashable {
    /// Applied to the record by this node; the event was routed.
    case applied(RoutedEvent)
    /// No record: routed to the named user without updating anything.
    case routedWithoutRecord(RoutedEvent)
    /// Changed nothing.
    case dropped(StatusDropReason)
    /// The broker failed; the message is lost for this node (another node may apply it).
    case failed(String)

    /// The routed event, if any.
    public var event: RoutedEvent? {
        switch self {
        case .applied(let event), .routedWithoutRecord(let event): return event
        default: return nil
        }
    }
}

/// Errors of job operations (other than the broker's own).
public enum JobError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A job payload must be a JSON object.
    case invalidPayload
    /// A user id must be non-empty, at most 128 bytes, without spaces or control characters.
    case invalidUser
    /// The value stored for this job is not a job record.
    case corruptRecord(String)
    /// No job type of this name is configured.
    case unknownJobType(String)

    public var description: String {
        switch self {
        case .invalidPayload: return "job payload must be a JSON object"
        case .invalidUser: return "user id must be \(JobID.acceptableShape)"
        case .corruptRecord(let jobId): return "stored record of job \(jobId) is not a job record"
        case .unknownJobType(let type): return "no job type \"\(type)\" is configured"
        }
    }
}
