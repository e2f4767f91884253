import Logging
import ServiceLifecycle

/// A session whose replay could not be read when it connected (the broker was away): it is
/// open, holding live events, until ``Router/runDeferredReplays()`` reads its replay.
struct DeferredReplay: Sendable {
    let session: Session
    let lastEventId: String?
}

extension Router {
    /// Opens a session for `userId` on this node and replays what it missed:
    ///
    /// - with `lastEventId`: the logged events after it, in order;
    /// - without: the events no connection of the user received (routed while the user had
    ///   no connection anywhere), in order;
    ///
    /// then live events. Live events that arrive while the log is read are held and released
    /// after the replayed ones; none is delivered twice.
    ///
    /// While the broker is away (connection lost or refused, no answer in time), the session
    /// opens anyway and its replay is read once the broker answers again, retried with
    /// backoff while ``run()`` runs. Refusing would leave many clients disconnected for good:
    /// a Socket.IO client does not retry a refused CONNECT by itself, and an `EventSource` does
    /// not reconnect after an error status. (Without a running router the error is thrown.)
    ///
    /// A `lastEventId` this system did not issue (not a decimal id, or above the last id of the
    /// user's sequence) is ignored, as if none was given, and recorded in the session's
    /// ``Session/ignoredLastEventId`` for the transport to tell the client (when the replay was
    /// deferred, only the log says so). Refusing the connection would lock out a client that
    /// keeps presenting it, and keeping it as the floor would hide every live event numbered
    /// below it.
    ///
    /// - Parameters:
    ///   - lastEventId: the last `eventId` the client saw (`auth.lastEventId`,
    ///     `?lastEventId=`, `Last-Event-ID`); `nil` or empty for none.
    ///   - transport: a label for operators.
    ///   - capacity: the session's outbound buffer (default: the registry's).
    /// - Throws: a ``BrokerError`` if the log cannot be read for another reason than the broker
    ///   being away (no session is left open then).
    public func connect(
        userId: String, lastEventId: String? = nil, transport: String, capacity: Int? = nil
    ) async throws -> Session {
        let presented = lastEventId.flatMap { $0.isEmpty ? nil : $0 }
        let session = registry.open(userId: userId, transport: transport, capacity: capacity, replaying: true)
        do {
            try await replay(to: session, lastEventId: presented)
        } catch {
            guard (error as? BrokerError)?.isOutage == true, deferReplay(DeferredReplay(session: session, lastEventId: presented)) else {
                session.close()
                throw error
            }
            logThrottle.log(
                "deferredReplay", .warning, "session opened without its replay: the broker is away; replaying once it answers",
                metadata: ["userId": "\(JobID.loggable(userId))", "error": "\(error)"], to: logger)
        }
        return session
    }

    /// Reads what `session` missed and hands it over, ending its replay.
    func replay(to session: Session, lastEventId presented: String?) async throws {
        let userId = session.userId
        var replay = EventLog.Replay.notIssued
        if let presented, let after = EventID(presented) {
            replay = try await eventLog.replay(of: userId, after: after, on: broker)
        }
        if case .notIssued = replay {
            if let presented {
                session.ignore(lastEventId: presented)
                logThrottle.log(
                    "ignoredLastEventId", .notice, "ignored a lastEventId this system did not issue",
                    metadata: ["userId": "\(JobID.loggable(userId))", "lastEventId": "\(presented.prefix(40))"], to: logger)
            }
            // What this node delivered counts even before its watermark is written; reading
            // needs no write, so a broker refusing writes (out of memory) still lets clients in.
            replay = try await eventLog.replay(of: userId, after: nil, deliveredHere: deliveredNotWritten(userId), on: broker)
        }
        guard case .events(let events, let floor, let last) = replay else { return }
        // A user without a sequence yet has had no event: everything logged from now on is new.
        session.noteSequence(at: last ?? EventID(0))
        if let delivered = session.finishReplay(with: events, after: floor) {
            noteDelivered(userId: userId, eventId: delivered)
        }
    }

    /// Queues `deferred` for ``runDeferredReplays()``; `false` if the router is not running
    /// (nothing would read the replay, and the session would hold its live events for ever).
    private func deferReplay(_ deferred: DeferredReplay) -> Bool {
        let queued = withState { state in
            guard state.running, !state.replaysFinished else { return false }
            state.deferredReplays.append(deferred)
            return true
        }
        if queued { replayContinuation.yield() }
        return queued
    }

    /// Reads the deferred replays whenever there are some, retrying with backoff (50 ms doubling
    /// to 2 s) while the broker is away, until graceful shutdown ends the signals. A replay
    /// that fails otherwise is given up: the session gets live events without it.
    func runDeferredReplays() async {
        for await _ in replayStream {
            var attempt = 0
            while true {
                let pending = withState { state in
                    defer { state.deferredReplays = [] }
                    return state.deferredReplays
                }
                if pending.isEmpty { break }
                var waiting: [DeferredReplay] = []
                for (index, deferred) in pending.enumerated() where !deferred.session.isClosed {
                    do {
                        try await replay(to: deferred.session, lastEventId: deferred.lastEventId)
                    } catch let error as BrokerError where error.isOutage {
                        // Still away: the rest would fail the same way; all wait for the next try.
                        waiting = Array(pending[index...])
                        break
                    } catch {
                        logger.error(
                            "gave up a deferred replay; the session gets live events only",
                            metadata: ["userId": "\(JobID.loggable(deferred.session.userId))", "error": "\(error)"])
                        if let delivered = deferred.session.finishReplay(with: []) {
                            noteDelivered(userId: deferred.session.userId, eventId: delivered)
                        }
                    }
                }
                if waiting.isEmpty { continue }  // others may have been deferred meanwhile
                let finished = withState { state in
                    state.deferredReplays.insert(contentsOf: waiting, at: 0)
                    return state.replaysFinished
                }
                if finished { return }
                attempt += 1
                let delay = RetryPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(2)).delay(afterAttempt: attempt)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
            }
        }
    }

    /// Ends ``runDeferredReplays()`` (shutdown closes the sessions still waiting).
    func finishDeferredReplays() {
        withState { $0.replaysFinished = true }
        replayContinuation.finish()
    }

    /// The highest event id this node delivered to `userId` that is not yet known to be written
    /// as the user's watermark (noted, or being written).
    func deliveredNotWritten(_ userId: String) -> EventID? {
        withState { EventID.later($0.pendingWatermarks[userId], $0.writingWatermarks[userId]) }
    }
}
