import Logging
import ServiceLifecycle
import Synchronization

extension Router {
    /// Subscribes and routes until graceful shutdown or cancellation.
    ///
    /// On graceful shutdown it stops listening, applies the status updates it already heard,
    /// writes the last delivered watermarks, then closes this node's sessions
    /// (``SessionCloseReason/shutdown``). Cancellation ends everything at once. Call it once.
    public func run() async throws {
        let lanes = (0..<configuration.statusLanes).map { _ in LaneQueue<StatusWork>(capacity: 256) }
        withState { $0.running = true }
        defer { withState { $0.running = false } }
        await withDiscardingTaskGroup { group in
            for lane in lanes {
                group.addTask { await self.drain(lane) }
            }
            group.addTask { await self.runWatermarkWriter() }
            group.addTask { await self.runCatchUp() }
            group.addTask { await self.runDeferredReplays() }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    await withDiscardingTaskGroup { listeners in
                        listeners.addTask { await self.runStatusSubscription(into: lanes) }
                        listeners.addTask { await self.runEmitDelivery() }
                    }
                }
                // Nothing new arrives now: the lanes drain and the watermark writer finishes.
                for lane in lanes { lane.finish() }
                self.finishWatermarks()
                self.finishCatchUp()
                self.finishDeferredReplays()
            }
        }
        registry.closeAll(reason: .shutdown)
    }

    /// Applies a lane's updates: whatever queued while the last batch was applied goes in one
    /// transaction per job type.
    private func drain(_ lane: LaneQueue<StatusWork>) async {
        while let batch = await lane.nextBatch(limit: 128) {
            var start = batch.startIndex
            while start < batch.endIndex {
                let store = batch[start].store
                let end = batch[start...].firstIndex { $0.store !== store } ?? batch.endIndex
                _ = await store.applyReporting(
                    batch[start..<end].map { ($0.update, $0.fields) }, retryingFor: configuration.applyRetryLimit)
                start = end
            }
        }
    }

    /// Status channels → lanes, by user, so that each user's updates stay in order.
    private func runStatusSubscription(into lanes: [LaneQueue<StatusWork>]) async {
        let storesByChannel = Dictionary(stores.values.map { ($0.names.statusChannel, $0) }, uniquingKeysWith: { a, _ in a })
        await subscribeRepeatedly(
            to: Array(storesByChannel.keys), buffering: configuration.statusBuffering,
            onSubscribed: { self.markSubscribed(status: $0) }
        ) { subscription in
            for try await message in subscription {
                guard let store = storesByChannel[message.channel],
                    case .success(let parsed) = store.receive(statusMessage: message.payload)
                else { continue }
                let lane = Int(UInt(bitPattern: parsed.update.userId.hashValue) % UInt(lanes.count))
                await lanes[lane].push(StatusWork(store: store, update: parsed.update, fields: parsed.fields))
            }
        }
    }

    /// `ws:emit` → this node's sessions, handed over where the broker delivers each message
    /// (delivering only queues frames on sessions: it never waits), not from a task of its own.
    ///
    /// Whenever `ws:emit` is heard again after messages may have been missed (the backend lost
    /// its connection, or the subscription had to be opened again), the sessions catch up from
    /// the users' event logs (``catchUpSessions()``).
    private func runEmitDelivery() async {
        var subscribedBefore = false
        await subscribeRepeatedly(
            to: [JobNames.emitChannel], buffering: configuration.emitBuffering,
            onSubscribed: { self.markSubscribed(emit: $0) }
        ) { subscription in
            subscription.onResumedAfterLoss { self.catchUpAfterLoss() }
            if subscribedBefore { self.catchUpAfterLoss() }
            subscribedBefore = true
            try await subscription.handleMessages { message in self.deliver(emitMessage: message.payload) }
        }
    }

    /// Called where a loss of `ws:emit` is noticed, before any later message is delivered:
    /// every session marks where it stands and holds live events (``Session/markForCatchUp()``)
    /// until ``catchUpSessions()`` has handed it what it missed.
    private func catchUpAfterLoss() {
        registry.markAllForCatchUp()
        catchUpSignalYield()
    }

    /// Runs ``catchUpSessions()`` each time it is signalled, until the signals end (shutdown).
    /// A catch-up that could not read every log is run again, with backoff (0.1 s doubling to
    /// 5 s), until it can: the missed events are only in the logs, and a live event moving a
    /// session past them would otherwise hide them for good.
    private func runCatchUp() async {
        for await _ in catchUpStream {
            var attempt = 0
            while await !catchUpSessions() {
                attempt += 1
                let delay = RetryPolicy(initialDelay: .milliseconds(100), maxDelay: .seconds(5)).delay(afterAttempt: attempt)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
            }
        }
    }

    /// Hands this node's sessions the logged events of their users that they missed: those
    /// published on `ws:emit` while this node did not hear it. Pub/sub kept none of them;
    /// every other node delivered them, and the user's event log has them. The logs are read
    /// 100 users to a pipelined round trip.
    ///
    /// The missed events begin where each session stood when the loss was noticed (see
    /// ``catchUpAfterLoss()``); the session has held live events since and hands them over
    /// after the logged ones, so the client sees its events in id order. Repeats are skipped by
    /// the session. If a log cannot be read, the held events go out and the next catch-up
    /// (``runCatchUp()`` tries again) still starts where this one did.
    /// - Returns: whether every log owed could be read.
    func catchUpSessions() async -> Bool {
        var caughtUp = 0
        var complete = true
        let owed = registry.sessionsByUser().compactMap { userId, sessions in
            let owing = sessions.compactMap { session in session.beginCatchUp().map { (session, $0.from, $0.marks) } }
            return owing.isEmpty ? nil : (userId: userId, sessions: owing)
        }
        for start in stride(from: 0, to: owed.count, by: 100) {
            let chunk = owed[start..<min(start + 100, owed.count)]
            let logs: [[[UInt8]]]
            do {
                let replies = try await broker.execute(
                    chunk.map { .range(queue: eventLog.logKey($0.userId), start: 0, stop: -1) }, atomically: false)
                logs = try replies.map { try $0.values() }
            } catch {
                complete = false
                for (userId, sessions) in chunk {
                    for (session, _, marks) in sessions {
                        // The held events go out now; the missed ones with the next try.
                        if let id = session.finishCatchUp(with: nil, after: marks) { noteDelivered(userId: userId, eventId: id) }
                    }
                }
                logThrottle.log(
                    "catchUp", .warning, "could not read event logs to catch sessions up; will try again",
                    metadata: ["users": "\(chunk.count)", "error": "\(error)"], to: logger)
                continue
            }
            for ((userId, sessions), entries) in zip(chunk, logs) {
                guard let floor = sessions.map(\.1).min() else { continue }
                let events = EventLog.events(in: entries, after: floor)
                var last: EventID?
                for (session, from, marks) in sessions {
                    let missed = events.filter { $0.eventId! > from }
                    let before = session.deliveredCount
                    // What it handed over: the missed events and those it held meanwhile.
                    last = EventID.later(last, session.finishCatchUp(with: missed, after: marks))
                    caughtUp += session.deliveredCount - before
                }
                if let last { noteDelivered(userId: userId, eventId: last) }
            }
        }
        if caughtUp > 0 {
            logger.info("sessions caught up after ws:emit was not heard for a while", metadata: ["events": "\(caughtUp)"])
        }
        return complete
    }

    /// Hands one `ws:emit` message to the local sessions of its room.
    func deliver(emitMessage bytes: [UInt8]) {
        let event: RoutedEvent
        do {
            event = try RoutedEvent(emitMessage: bytes)
        } catch {
            countEmit(malformed: true)
            logThrottle.log(
                "malformedEmit", .warning, "dropped ws:emit message",
                metadata: ["reason": "\(error)", "message": "\(JobStore.preview(bytes))"], to: logger)
            return
        }
        countEmit(malformed: false)
        let result = registry.broadcast(event)
        // Held events count once their session hands them over (``replay(to:lastEventId:)``,
        // ``catchUpSessions()``): a session that closes mid-replay never sends them, and a
        // watermark noted now would hide them from the user's next connection.
        if result.delivered > 0, let eventId = event.eventId, let userId = event.userId {
            noteDelivered(userId: userId, eventId: eventId)
        }
    }

    /// Subscribes to `channels` and handles their messages; subscribes again after a failure,
    /// until the task is cancelled or the broker is shut down.
    private func subscribeRepeatedly(
        to channels: [String], buffering: SubscriptionBuffering, onSubscribed: (Bool) -> Void,
        consume: (Subscription) async throws -> Void
    ) async {
        while !Task.isCancelled {
            do {
                try await broker.subscribe(to: channels, patterns: [], buffering: buffering) { subscription in
                    onSubscribed(true)
                    try await consume(subscription)
                }
            } catch let error as BrokerError where error.code == .shutDown {
                onSubscribed(false)
                logger.info("broker shut down; router stops listening", metadata: ["channels": "\(channels)"])
                return
            } catch {
                if Task.isCancelled { break }
                logger.error("subscription failed; subscribing again", metadata: ["channels": "\(channels)", "error": "\(error)"])
            }
            onSubscribed(false)
            if Task.isCancelled { break }
            try? await Task.sleep(for: configuration.resubscribeDelay)
        }
    }

    // MARK: Delivered watermarks

    /// Records that `eventId` reached a session of `userId` (written by the watermark writer).
    func noteDelivered(userId: String, eventId: EventID) {
        withState { state in
            if let current = state.pendingWatermarks[userId], current >= eventId { return }
            state.pendingWatermarks[userId] = eventId
        }
        watermarkSignalYield()
    }

    /// Writes pending watermarks whenever there are some, at most once per
    /// ``RouterConfiguration/watermarkInterval``: one pipelined round trip for everything noted
    /// meanwhile, so delivering costs a node one write per interval, not one per event.
    private func runWatermarkWriter() async {
        let clock = ContinuousClock()
        var lastWrite = clock.now - configuration.watermarkInterval
        for await _ in watermarkStream {
            // Gather what the next interval brings (the stream keeps one signal for it); at
            // shutdown the stream finishes and whatever is pending is written below.
            let due = lastWrite + configuration.watermarkInterval
            if clock.now < due { try? await Task.sleep(until: due, clock: clock) }
            lastWrite = clock.now
            do {
                try await writeWatermarks()
            } catch {
                logger.warning("could not write delivered watermarks; will retry", metadata: ["error": "\(error)"])
            }
        }
        // Finished (shutdown): what is still pending goes now, if the broker lets it.
        try? await writeWatermarks()
    }

    /// Writes the pending watermarks. On failure they stay pending.
    /// While the write is out, the watermarks are kept as being written: a connection opened
    /// meanwhile counts them (``deliveredNotWritten(_:)``).
    func writeWatermarks() async throws {
        let pending: [String: EventID] = withState { state in
            defer { state.pendingWatermarks = [:] }
            state.writingWatermarks.merge(state.pendingWatermarks) { max($0, $1) }
            return state.pendingWatermarks
        }
        guard !pending.isEmpty else { return }
        defer {
            withState { state in
                for (user, id) in pending where state.writingWatermarks[user] == id { state.writingWatermarks[user] = nil }
            }
        }
        let commands = pending.map { eventLog.watermarkCommand(userId: $0.key, eventId: $0.value) }
        do {
            let replies = try await broker.execute(commands, atomically: false)
            for reply in replies { if case .error(let error) = reply { throw error } }
            withState { $0.watermarksWritten += commands.count }
        } catch {
            withState { state in
                for (user, id) in pending where state.pendingWatermarks[user].map({ $0 < id }) ?? true {
                    state.pendingWatermarks[user] = id
                }
            }
            throw error
        }
    }
}

/// One status update waiting in a lane.
struct StatusWork: Sendable {
    let store: JobStore
    let update: StatusUpdate
    let fields: [String: JSONValue]
}
