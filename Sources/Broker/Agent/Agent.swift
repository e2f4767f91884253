public import Logging
public import ServiceLifecycle
import Synchronization

/// A reliable job agent (SPEC §4): takes job ids from the queue into the processing list in
/// one step, runs its ``JobHandler`` on each with a lease renewed as the sign of life, publishes
/// `processing` then `done` or `error`, and acknowledges. A ``Reaper`` puts back jobs whose
/// agent died or stalled, so no job is lost (delivery is at least once).
///
/// Run it as a `Service` (in a `ServiceGroup`). On graceful shutdown it stops taking jobs at
/// once (a waiting take is cancelled), finishes the jobs in flight, and `run()` returns.
/// Cancellation abandons the jobs in flight: they are put back on the queue.
///
/// Per job, on a queue with work waiting: `LREM` + `DEL` lease of the job before (see below) +
/// `SET` lease + `GET` record (one pipeline); `PUBLISH processing`; `PUBLISH done` + `LMOVE` of
/// the next job (one pipeline): seven commands in three round trips. A finished job leaves the
/// processing list only once its final status's `PUBLISH` has answered, so a status lost with
/// its connection (Redis frozen, replies never read, the buffered commands run later when no
/// gateway listens) cannot leave a job reported nowhere and taken by no one: it stays taken,
/// its lease lapses, and it runs again. An empty queue adds a `BLMOVE`; leases of
/// long jobs are renewed together, one pipelined `SET … XX` per job every
/// ``AgentConfiguration/leaseRenewalInterval``. A status no subscriber heard (`PUBLISH`
/// answered 0: every gateway was reconnecting) is published again until one does
/// (``AgentConfiguration/unheardStatusLifetime``); gateways apply each status once.
public final class Agent<Handler: JobHandler>: Service, Sendable {
    public let configuration: AgentConfiguration
    let broker: any Broker
    let handler: Handler
    let logger: Logger
    let leases: LeaseKeeper
    /// Statuses published when no gateway was listening, published again until one hears them.
    let unheard: UnheardStatuses
    private let keys: AgentKeys
    /// Turns to wait on an empty queue (``AgentConfiguration/waitingTakes``).
    let takeTurns: TakeTurns
    private let counters = Mutex(AgentStatistics())

    public init(
        broker: any Broker, handler: Handler, configuration: AgentConfiguration = AgentConfiguration(),
        logger: Logger = Logger(label: "switchboard.agent")
    ) {
        var logger = logger
        logger[metadataKey: "agent"] = "\(configuration.agentId)"
        self.broker = broker
        self.handler = handler
        self.configuration = configuration
        self.logger = logger
        self.leases = LeaseKeeper(broker: broker, configuration: configuration, logger: logger)
        self.unheard = UnheardStatuses(
            broker: broker, channel: configuration.names.statusChannel, logger: logger,
            lifetime: configuration.unheardStatusLifetime, retry: configuration.unheardStatusRetry)
        self.keys = AgentKeys(configuration.names)
        self.takeTurns = TakeTurns(count: configuration.waitingTakes)
    }

    /// What the agent has done so far.
    public var statistics: AgentStatistics {
        var statistics = counters.withLock { $0 }
        let unheard = self.unheard.counts
        statistics.statusesRepublished = unheard.republished
        statistics.statusesUnheard = unheard.givenUp
        return statistics
    }

    private var names: JobNames { configuration.names }

    public func run() async throws {
        logger.info(
            "agent started",
            metadata: [
                "queue": "\(names.queue)", "concurrency": "\(configuration.concurrency)",
                "visibilityTimeout": "\(configuration.visibilityTimeout)", "backend": "\(broker.backendName)",
            ])
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.leases.run() }
            background.addTask { await self.unheard.run() }
            background.addTask {
                var reaper = Reaper(
                    broker: self.broker, configuration: self.configuration, logger: self.logger, unheard: self.unheard)
                await reaper.run()
            }
            await withTaskGroup(of: Void.self) { workers in
                for worker in 0..<configuration.concurrency {
                    workers.addTask { await self.work(worker) }
                }
            }
            // Every worker has finished its last job: nothing left to renew or to reap for.
            background.cancelAll()
        }
        logger.info("agent stopped", metadata: ["done": "\(statistics.done)", "failed": "\(statistics.failed)"])
    }

    // MARK: Taking

    /// Worker number `worker`: takes and runs jobs one at a time until shutdown. Each job's
    /// acknowledgement also takes the next job (see ``acknowledge(_:publishing:logger:)``); a
    /// job taken so is run even if shutdown began meanwhile (it is in flight).
    private func work(_ worker: Int) async {
        var failures = 0
        var blockingTakes = 0  // takes left that wait with BLMOVE at once (see `take`)
        let waitAtOnce = broker.callsAreRoundTrips
        var next = NextTake.notTried
        // A finished job whose final status was published and answered, still in the
        // processing list: removed with the next job's start, or now if there is none.
        var owed: TakenJob?
        while true {
            var taken: [UInt8]?
            if case .found(let id) = next {
                taken = id
            } else {
                if let job = owed {
                    owed = nil
                    await remove(job)
                }
                guard !Task.isShuttingDownGracefully && !Task.isCancelled else { break }
                // An acknowledgement that just found the queue empty counts as a take that did.
                let justFoundEmpty = next == .foundEmpty
                do {
                    let (id, foundEmpty) = try await take(tryingWithoutWaiting: blockingTakes == 0 && !justFoundEmpty)
                    taken = id
                    blockingTakes = (foundEmpty || justFoundEmpty) && waitAtOnce ? 64 : max(0, blockingTakes - 1)
                    failures = 0
                } catch is CancellationError {
                    // The loop condition tells shutdown from a spurious wake-up.
                } catch let error as BrokerError where error.code == .shutDown {
                    logger.error("the broker was shut down; worker stops", metadata: ["error": "\(error)"])
                    return
                } catch {
                    failures += 1
                    let delay = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(5))
                        .delay(afterAttempt: failures)
                    logger.warning("could not take a job; retrying", metadata: ["error": "\(error)", "in": "\(delay)"])
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                }
            }
            next = .notTried
            guard let taken else { continue }
            counters.withLock { $0.taken += 1 }
            (next, owed) = await process(String(decoding: taken, as: UTF8.self), idBytes: taken, worker: worker, settling: owed)
        }
    }

    /// What a worker's last acknowledgement found when it also took the next job.
    private enum NextTake: Equatable {
        /// It did not try (shutting down, or the acknowledgement failed).
        case notTried
        case found([UInt8])
        case foundEmpty
    }

    /// Moves the oldest waiting id (the queue's tail: jobs are LPUSH'd) to the head of the
    /// processing list. While jobs keep coming it tries `LMOVE` first: a busy queue costs one
    /// command and no extra task. On a broker whose calls are round trips, once a take finds
    /// the queue empty, the worker's next 64 takes wait with `BLMOVE` at once (one round trip
    /// instead of two while the agent outpaces the producers); then it tries `LMOVE` again.
    /// In process, every take tries `LMOVE` first: an empty one costs less than the task a
    /// wait needs, which would be spent on every take that finds a job. At most
    /// ``AgentConfiguration/waitingTakes`` workers wait at once; the others wait for a turn
    /// (``TakeTurns``). A wait ends on graceful shutdown.
    /// - Returns: the id (or `nil` if the wait ended without one), and whether `LMOVE` was
    ///   tried and found the queue empty.
    private func take(tryingWithoutWaiting: Bool) async throws -> (id: [UInt8]?, foundEmpty: Bool) {
        let keys = self.keys
        if tryingWithoutWaiting {
            if let id = try await broker.move(from: keys.queue, .tail, to: keys.processing, .head) {
                return (id, false)
            }
        }
        let id = try await Self.untilGracefulShutdown { [broker, takeTurns] in
            try await takeTurns.acquire()
            defer { takeTurns.release() }
            return try await broker.blockingMove(from: keys.queue, .tail, to: keys.processing, .head, timeout: nil)
        }
        return (id, tryingWithoutWaiting)
    }

    /// Runs `operation` in a task that is cancelled on graceful shutdown or when the caller is
    /// cancelled, and returns (or throws) what it does: ServiceLifecycle's
    /// `cancelWhenGracefulShutdown` with one task instead of a task group of two plus the
    /// task its shutdown waiter starts. Blocking takes are the agent's most frequent wait, and
    /// those three tasks cost more than a memory-backed job's broker work.
    ///
    /// The task starts at once on the caller's thread (`Task.immediate`): a take that finds a
    /// job without waiting is done before the task would have been scheduled.
    ///
    /// The task is owned here: awaited before returning, never left behind. A value the
    /// operation got before the cancellation reached it is returned, not lost.
    private static func untilGracefulShutdown<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let task = Task.immediate(operation: operation)
        return try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await task.value
            } onGracefulShutdown: {
                task.cancel()
            }
        } onCancel: {
            task.cancel()
        }
    }

    // MARK: Running one job

    /// A job taken from the queue: its id as text and as the bytes in the processing list,
    /// and its lease's key, each made once per job.
    private struct TakenJob {
        let id: String
        let idBytes: [UInt8]
        let leaseKey: String
    }

    private enum Outcome {
        case done(JSONValue, attempts: Int)
        case failed(JobFailure, attempts: Int)
        case abandoned
    }

    /// Runs job `jobId` (`idBytes` as taken from the queue) on worker number `worker`, first
    /// removing `owed` (the job before, reported) from the processing list in the same round
    /// trip; returns what its acknowledgement found of the next job, and this job if it is
    /// owed such a removal in turn.
    private func process(
        _ jobId: String, idBytes: [UInt8], worker: Int, settling owed: TakenJob?
    ) async -> (next: NextTake, owed: TakenJob?) {
        let logger = JobLogger(base: self.logger, jobId: jobId)
        let job = TakenJob(id: jobId, idBytes: idBytes, leaseKey: keys.lease(jobId))
        if let owed, !JobID.isAcceptable(jobId) { await remove(owed) }
        guard JobID.isAcceptable(jobId) else {
            // Gateways refuse its statuses: the work would be done for nobody to hear of it.
            logger.warning("job id is not usable (\(JobID.acceptableShape)); dropping the id")
            counters.withLock { $0.skipped += 1 }
            return (await acknowledge(job, publishing: nil, logger: logger).next, nil)
        }
        leases.hold(jobId, worker: worker)
        defer { leases.release(worker: worker) }

        let recordBytes: [UInt8]?
        do {
            recordBytes = try await start(job, settling: owed)
        } catch {
            logger.error("could not start the job; the reaper will put it back", metadata: ["error": "\(error)"])
            counters.withLock { $0.abandoned += 1 }
            return (.notTried, nil)
        }
        guard let recordBytes else {
            logger.warning("job record is gone (expired or deleted); dropping the id")
            counters.withLock { $0.skipped += 1 }
            return (await acknowledge(job, publishing: nil, logger: logger).next, nil)
        }
        let record: JobRecord
        do {
            record = try JobRecord.decodeForAgent(recordBytes, queuedId: jobId)
        } catch {
            logger.error("job record is not a valid job; dropping the id", metadata: ["error": "\(error)"])
            counters.withLock { $0.skipped += 1 }
            return (await acknowledge(job, publishing: nil, logger: logger).next, nil)
        }
        let userId = record.user.publicKey
        guard JobID.isAcceptable(userId) else {
            logger.error(
                "job owner's user id is not usable (\(JobID.acceptableShape)): no gateway would deliver its statuses; dropping the id",
                metadata: ["userId": "\(JobID.loggable(userId))"])
            counters.withLock { $0.skipped += 1 }
            return (await acknowledge(job, publishing: nil, logger: logger).next, nil)
        }

        do {
            let processing = StatusUpdate(jobId: jobId, status: .processing, userId: userId).jsonBytesForAgent(stampedAt: .now())
            // Published twice if a reply was lost: gateways drop the repeat.
            let receivers = try await Self.retryingWhileAway { [broker, keys] in
                try await broker.publish(processing, to: keys.statusChannel)
            }
            if receivers == 0 { unheard.add([processing], jobId: jobId) }
        } catch {
            // The work can still be done and reported; the final acknowledgement retries.
            logger.warning("could not publish processing", metadata: ["error": "\(error)"])
        }

        let update: StatusUpdate
        switch await runHandler(record, logger: logger) {
        case .done(let result, let attempts):
            update = StatusUpdate(jobId: jobId, status: .done, userId: userId, result: result, attempts: attempts > 1 ? attempts : nil)
        case .failed(let failure, let attempts):
            update = StatusUpdate(
                jobId: jobId, status: .error, userId: userId, error: failure.message, details: failure.details,
                attempts: attempts)
            logger.notice("job failed", metadata: ["error": "\(failure.message)", "attempts": "\(attempts)"])
        case .abandoned:
            counters.withLock { $0.abandoned += 1 }
            await putBack(job, logger: logger)
            return (.notTried, nil)
        }
        // Stamped now, as it is published: the update's timestamp is written into its bytes.
        let acknowledgement = await acknowledge(job, publishing: update.jsonBytesForAgent(stampedAt: .now()), logger: logger)
        guard acknowledgement.acknowledged else { return (acknowledgement.next, nil) }
        counters.withLock { update.status == .done ? ($0.done += 1) : ($0.failed += 1) }
        return (acknowledgement.next, job)
    }

    /// Takes the lease of `job` and reads its record (one pipeline), tried again while the
    /// broker is away: the job is this worker's, and leaving it to the reaper after a blip of a
    /// few milliseconds would hold it back for the whole visibility timeout. Taking the lease
    /// again is harmless if the first try had taken it before its reply was lost.
    ///
    /// `owed`, the worker's job before (reported), leaves the processing list in the same round
    /// trip (``removalCommands(_:)``). If that fails, its lease lapses and it runs again.
    private func start(_ job: TakenJob, settling owed: TakenJob?) async throws -> [UInt8]? {
        let removal = owed.map(removalCommands) ?? []
        return try await Self.retryingWhileAway { [broker, leases, keys, logger] in
            let replies = try await broker.execute(
                removal + [leases.acquireCommand(key: job.leaseKey), .get(key: keys.record(job.id))], atomically: false)
            for case .error(let error) in replies.prefix(removal.count) {
                logger.warning(
                    "could not remove a finished job from the processing list; it will run again",
                    metadata: ["jobId": "\(owed?.id ?? "")", "error": "\(error)"])
            }
            _ = try replies[removal.count].isOK()
            return try replies[removal.count + 1].value()
        }
    }

    /// Removes a reported job (``removalCommands(_:)``) in a round trip of its own, retried as
    /// an acknowledgement is: for a worker with no next job to send it with.
    private func remove(_ job: TakenJob) async {
        _ = await acknowledge(job, publishing: nil, takingNext: false, logger: JobLogger(base: logger, jobId: job.id))
    }

    /// Takes a finished job off the processing list (from the tail: takes push onto the head,
    /// so a job taken before those still running sits near the tail) and deletes its lease.
    private func removalCommands(_ job: TakenJob) -> [BrokerCommand] {
        [.remove(value: job.idBytes, count: -1, queue: keys.processing), .delete(keys: [job.leaseKey])]
    }

    /// Runs `operation`, and again while it fails because the broker is away or out of memory
    /// (up to five tries, 0.1 s doubling between them: about 3 s in all), for steps that are
    /// safe to repeat.
    private static func retryingWhileAway<Value: Sendable>(
        _ operation: @Sendable () async throws -> Value
    ) async throws -> Value {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await operation()
            } catch let error as BrokerError where error.isTransient && attempt < 5 {
                try await Task.sleep(for: RetryPolicy(initialDelay: .milliseconds(100)).delay(afterAttempt: attempt))
            }
        }
    }

    /// Runs the handler, retrying transient failures per the retry policy.
    private func runHandler(_ record: JobRecord, logger: JobLogger) async -> Outcome {
        let policy = configuration.retry
        var attempt = 0
        while true {
            attempt += 1
            do {
                return .done(try await handler.handle(record), attempts: attempt)
            } catch let failure as JobFailure where failure.kind == .permanent {
                return .failed(failure, attempts: attempt)
            } catch {
                if Task.isCancelled { return .abandoned }
                let failure = error as? JobFailure ?? .transient(String(describing: error))
                guard attempt < policy.maxAttempts else { return .failed(failure, attempts: attempt) }
                let delay = policy.delay(afterAttempt: attempt)
                counters.withLock { $0.retries += 1 }
                logger.warning(
                    "job attempt failed; retrying",
                    metadata: ["error": "\(failure.message)", "attempt": "\(attempt)", "in": "\(delay)"])
                do { try await Task.sleep(for: delay) } catch { return .abandoned }
            }
        }
    }

    // MARK: Finishing

    /// With `update` (a status update's bytes): publishes it, after any earlier statuses of the
    /// job that nobody heard. Without: removes the job from the processing list and deletes its
    /// lease (``removalCommands(_:)``). Unless shutdown began or `takingNext` is false, the same
    /// round trip takes the next job (`LMOVE`, as ``take(tryingWithoutWaiting:)`` does), which
    /// saves a worker on a busy queue one round trip in four.
    ///
    /// A reported job is removed only later, once its `PUBLISH` has answered (with the next
    /// job's start, or alone; see ``work(_:)``): a status and the job's removal sent together
    /// could both run after their connection was given up (Redis frozen, the commands still in
    /// its socket buffer), the status reaching no gateway and the job gone from every list.
    /// No `MULTI` is needed for the removal: the only other writer of these keys is the
    /// reaper, whose transaction watches both the processing list and the lease, so it sees
    /// either the job still leased (before the `LREM`) or no longer taken (after); a removal
    /// cut short after the `LREM` leaves a lease that expires. A next job whose `LMOVE` ran but
    /// whose reply was lost has no lease, and the reaper puts it back, as after any lost take.
    /// Retried (the take is not) for up to the visibility timeout; if the broker stays
    /// unreachable that long, the lease lapses and the job runs again.
    /// - Returns: whether the statuses (or the removal) went through, and what the take found.
    private func acknowledge(
        _ job: TakenJob, publishing update: [UInt8]?, takingNext: Bool = true, logger: JobLogger
    ) async -> (acknowledged: Bool, next: NextTake) {
        var commands: [BrokerCommand] = []
        commands.reserveCapacity(3)
        // Statuses of the job that nobody heard go first, in order, so that its timeline keeps
        // them: a `processing` heard after the `done` would be refused as late.
        let earlier = update == nil ? [] : await unheard.take(jobId: job.id)
        for status in earlier {
            commands.append(.publish(payload: status, channel: keys.statusChannel))
        }
        if let update {
            commands.append(.publish(payload: update, channel: keys.statusChannel))
        } else {
            commands += removalCommands(job)
        }
        let publishes = earlier.count + (update == nil ? 0 : 1)
        let acknowledgement = commands.count
        if takingNext && !Task.isShuttingDownGracefully && !Task.isCancelled {
            commands.append(.move(source: keys.queue, sourceEnd: .tail, destination: keys.processing, destinationEnd: .head))
        }
        var next = NextTake.notTried
        var completed = 0  // commands of the pipeline that have succeeded, never re-sent
        // Tried until the visibility timeout has passed: by then the job's lease has lapsed and
        // a reaper may have put it back. Giving up sooner would run a finished job again
        // after any outage longer than a blip.
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.visibilityTimeout
        var attempt = 0
        while true {
            attempt += 1
            do {
                let pending = attempt == 1 ? commands : Array(commands[completed..<acknowledgement])
                let replies = try await broker.execute(pending, atomically: false)
                // The take's reply first: it ran whatever the others did, and its job must not be dropped.
                if attempt == 1, commands.count > acknowledgement, let taken = replies.last {
                    switch taken {
                    case .value(let id): next = .found(id)
                    case .null: next = .foundEmpty
                    case .error(let error):
                        // The acknowledgement went through regardless; the worker's own take
                        // tries again with backoff (a Redis out of memory refuses LMOVE only).
                        logger.warning(
                            "acknowledged; could not take the next job with it, the worker tries again",
                            metadata: ["error": "\(error)"])
                    default: logger.warning("could not take the next job", metadata: ["reply": "\(taken)"])
                    }
                }
                for reply in replies.prefix(acknowledgement - completed) {
                    if case .error(let error) = reply { throw error }
                    // PUBLISH answers how many subscribers got the update: none, and the job's
                    // statuses are published again.
                    if completed == publishes - 1, let update, case .integer(let receivers) = reply, receivers == 0 {
                        unheard.add(earlier + [update], jobId: job.id)
                    }
                    completed += 1
                }
                return (true, next)
            } catch {
                if attempt == 1 {
                    logger.warning("could not acknowledge the job; retrying", metadata: ["error": "\(error)"])
                }
                let left = deadline - clock.now
                guard left > .zero else { break }
                let delay = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(1)).delay(afterAttempt: attempt)
                do { try await Task.sleep(for: min(delay, left)) } catch { break }
            }
        }
        logger.error(
            "gave up acknowledging the job; it will be put back and run again",
            metadata: ["attempts": "\(attempt)", "for": "\(configuration.visibilityTimeout)"])
        return (false, next)
    }

    /// Puts an abandoned job straight back on the queue (best effort: if this fails, its lease
    /// lapses and the reaper does it).
    private func putBack(_ job: TakenJob, logger: JobLogger) async {
        do {
            _ = try await broker.execute(
                [
                    .remove(value: job.idBytes, count: -1, queue: keys.processing),
                    .push([job.idBytes], end: .tail, queue: keys.queue),
                    .delete(keys: [job.leaseKey]),
                ], atomically: true)
            logger.notice("job abandoned unfinished; put back on the queue")
        } catch {
            logger.notice("job abandoned unfinished; the reaper will put it back", metadata: ["error": "\(error)"])
        }
    }
}
