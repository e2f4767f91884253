import DequeModule
import Logging
import Synchronization

/// Status updates an agent published when nobody was subscribed to the status channel
/// (`PUBLISH` answered 0), published again until a subscriber hears them.
///
/// Pub/sub keeps nothing: a `done` published while every gateway's subscriber was reconnecting
/// (a Redis restart, a network blip, `CLIENT KILL`) was simply gone. The job had run and been
/// acknowledged, its record stayed at `created` and its user never heard of it; a drill with five
/// subscriber reconnects lost 10 of 200 jobs that way. `PUBLISH` says how many subscribers got
/// a message, so an unheard one is known at no extra cost; publishing again is safe because
/// gateways apply each status once, whatever they hear twice.
///
/// A job's unheard statuses wait together, oldest first, and are published again in that order:
/// a `processing` nobody heard goes out before its job's `done` (see ``take(jobId:)``), so the
/// timeline keeps it; a gateway would refuse it after the `done` as late. At most ``capacity``
/// jobs wait; the oldest is dropped beyond that. Each is retried with backoff for ``lifetime``:
/// statuses nobody hears that long (no gateway running at all) are given up.
final class UnheardStatuses: Sendable {
    private struct Unheard {
        let jobId: String
        /// Oldest first.
        var statuses: [[UInt8]]
        let since: ContinuousClock.Instant
        var attempt: Int
        var due: ContinuousClock.Instant
    }

    private struct State {
        var waiting: Deque<Unheard> = []
        /// Jobs whose statuses ``publishDue(all:)`` has taken to publish again, with the
        /// ``take(jobId:)`` calls waiting for that to finish.
        var republishing: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Resumed when a status is added while the loop waits for one.
        var wakeUp: CheckedContinuation<Void, Never>?
        var republished = 0
        var givenUp = 0

        /// Removes the entry of `jobId`, if any; its statuses, oldest first.
        mutating func removeStatuses(of jobId: String) -> [[UInt8]] {
            guard let index = waiting.firstIndex(where: { $0.jobId == jobId }) else { return [] }
            return waiting.remove(at: index).statuses
        }
    }

    let capacity: Int
    let lifetime: Duration
    /// The most statuses kept for one job (the newest).
    static let statusesPerJob = 8
    private let retry: RetryPolicy
    private let broker: any Broker
    private let channel: String
    private let logger: Logger
    private let logThrottle = LogThrottle()
    private let state = Mutex(State())
    /// `state.waiting.count`, readable without the lock (kept by ``changingWaiting(_:)``).
    private let waitingCount = Atomic<Int>(0)

    init(
        broker: any Broker, channel: String, logger: Logger, capacity: Int = 10_000, lifetime: Duration = .seconds(60),
        retry: RetryPolicy = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(5))
    ) {
        self.broker = broker
        self.channel = channel
        self.logger = logger
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
        self.retry = retry
    }

    /// How many were heard when published again, and how many were given up.
    var counts: (republished: Int, givenUp: Int) {
        state.withLock { ($0.republished, $0.givenUp) }
    }

    /// Removes and returns what waits for `jobId`, oldest first: the agent publishes it in
    /// front of the job's next status. If the job's statuses are being published again at this
    /// moment, it first waits for that to finish, so that the next status cannot overtake them
    /// (a gateway would refuse a `processing` heard after the `done` as late); it then gets
    /// them back only if nobody heard them this time either.
    func take(jobId: String) async -> [[UInt8]] {
        // Called for every finished job; nearly always nothing waits.
        guard waitingCount.load(ordering: .relaxed) > 0 else { return [] }
        while true {
            let statuses = changingWaiting { state in
                state.republishing[jobId] == nil ? state.removeStatuses(of: jobId) : nil
            }
            if let statuses { return statuses }
            await withCheckedContinuation { continuation in
                let finished = state.withLock { state in
                    guard state.republishing[jobId] != nil else { return true }
                    state.republishing[jobId]!.append(continuation)
                    return false
                }
                if finished { continuation.resume() }
            }
        }
    }

    /// How many ``take(jobId:)`` calls wait for a republish to finish (for tests).
    var takesWaitingForRepublish: Int {
        state.withLock { $0.republishing.values.reduce(0) { $0 + $1.count } }
    }

    /// `body` under the lock, for a change of `waiting` or `republishing`: their count is
    /// stored for ``take(jobId:)``.
    private func changingWaiting<Result>(_ body: (inout State) -> Result) -> Result {
        state.withLock { state in
            defer { waitingCount.store(state.waiting.count + state.republishing.count, ordering: .relaxed) }
            return body(&state)
        }
    }

    /// The newest of a job's statuses that are kept: a job has a few; more would be a job run
    /// over and over unheard.
    private static func kept(_ statuses: [[UInt8]]) -> [[UInt8]] {
        Array(statuses.suffix(statusesPerJob))
    }

    /// Notes that `statuses` of `jobId` (oldest first) reached no subscriber.
    func add(_ statuses: [[UInt8]], jobId: String) {
        guard !statuses.isEmpty else { return }
        let now = ContinuousClock.now
        let (wakeUp, dropped) = changingWaiting { state -> (CheckedContinuation<Void, Never>?, Bool) in
            let earlier = state.removeStatuses(of: jobId)
            var dropped = false
            if state.waiting.count >= capacity {
                state.waiting.removeFirst()
                state.givenUp += 1
                dropped = true
            }
            state.waiting.append(
                Unheard(
                    jobId: jobId, statuses: Self.kept(earlier + statuses), since: now, attempt: 1,
                    due: now + retry.delay(afterAttempt: 1)))
            defer { state.wakeUp = nil }
            return (state.wakeUp, dropped)
        }
        wakeUp?.resume()
        if dropped {
            logThrottle.log(
                "full", .warning, "too many unheard status updates waiting; dropped the oldest",
                metadata: ["capacity": "\(capacity)"], to: logger)
        }
        logThrottle.log(
            "unheard", .notice, "no subscriber heard a status update; it will be published again",
            metadata: ["jobId": "\(JobID.loggable(jobId))", "channel": "\(channel)"], to: logger)
    }

    /// Publishes the waiting statuses again as they fall due, until cancelled; then publishes
    /// whatever still waits once more.
    func run() async {
        while !Task.isCancelled {
            let next = state.withLock { $0.waiting.map(\.due).min() }
            guard let next else {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let resumeNow = state.withLock { state in
                            guard state.waiting.isEmpty, !Task.isCancelled else { return true }
                            state.wakeUp = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    state.withLock { state in defer { state.wakeUp = nil }; return state.wakeUp }?.resume()
                }
                continue
            }
            // Not past the first retry delay: a status added meanwhile may fall due sooner.
            let wake = min(next, ContinuousClock.now + retry.initialDelay)
            if wake > .now {
                do { try await Task.sleep(until: wake, clock: .continuous) } catch { break }
            }
            await publishDue(all: false)
        }
        await publishDue(all: true)
    }

    /// Publishes the statuses that are due (or all of them, once, at shutdown). Their jobs
    /// count as being republished until each is done: a ``take(jobId:)`` for one waits.
    private func publishDue(all: Bool) async {
        let now = ContinuousClock.now
        let due = changingWaiting { state -> [Unheard] in
            let due = Array(state.waiting.filter { all || $0.due <= now })
            state.waiting.removeAll { all || $0.due <= now }
            for unheard in due { state.republishing[unheard.jobId] = [] }
            return due
        }
        for var unheard in due {
            // In order, stopping at the first nobody heard: a gateway that began listening
            // between two of them would otherwise hear the later (done) without the earlier
            // (processing), and refuse that one as late when it came again.
            var heardCount = 0
            for status in unheard.statuses {
                guard let receivers = try? await broker.publish(status, to: channel), receivers > 0 else { break }
                heardCount += 1
            }
            let heard = heardCount == unheard.statuses.count
            unheard.statuses.removeFirst(heardCount)
            let expired = ContinuousClock.now - unheard.since >= lifetime
            if heard {
                state.withLock { $0.republished += 1 }
            } else if all || expired {
                state.withLock { $0.givenUp += 1 }
                logThrottle.log(
                    "givenUp", .warning, "no subscriber heard a status update; given up (is a gateway running?)",
                    metadata: ["jobId": "\(JobID.loggable(unheard.jobId))", "channel": "\(channel)"], to: logger)
            } else {
                unheard.attempt += 1
                unheard.due = ContinuousClock.now + retry.delay(afterAttempt: unheard.attempt)
            }
            let waiters = changingWaiting { state in
                if !heard && !all && !expired {
                    // Statuses of the job added meanwhile are newer: they go after these.
                    unheard.statuses = Self.kept(unheard.statuses + state.removeStatuses(of: unheard.jobId))
                    state.waiting.append(unheard)
                }
                return state.republishing.removeValue(forKey: unheard.jobId) ?? []
            }
            for waiter in waiters { waiter.resume() }
        }
    }
}
