import Synchronization

/// A job prepared for creation (record built and encoded outside any lock or transaction).
struct NewJob: Sendable {
    let record: JobRecord
    let bytes: [UInt8]
    let time: Timestamp
}

extension JobStore {
    // MARK: Creations

    /// Creates `jobs` in one transaction watching their users' event counters: every record
    /// (TTL 24 h), one LPUSH of all ids (in order, so BRPOP takes the oldest first), and the
    /// `created` events. If the batch fails for another reason than the broker being away,
    /// each job is tried alone, so one bad job does not fail its neighbours.
    func commitCreations(_ jobs: [NewJob]) async -> [Result<JobRecord, any Error>] {
        do {
            try await commitCreationBatch(jobs)
            return jobs.map { .success($0.record) }
        } catch {
            guard jobs.count > 1, !Self.isOutage(error) else { return jobs.map { _ in .failure(error) } }
            var results: [Result<JobRecord, any Error>] = []
            for job in jobs {
                do {
                    try await commitCreationBatch([job])
                    results.append(.success(job.record))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    private func commitCreationBatch(_ jobs: [NewJob]) async throws {
        var users: [String] = []
        var seen: Set<String> = []
        for job in jobs where seen.insert(job.record.user.publicKey).inserted { users.append(job.record.user.publicKey) }
        let sequenceKeys = users.map(eventLog.sequenceKey)
        let broker = self.broker
        _ = try await broker.transaction(watching: sequenceKeys) {
            let replies = try await broker.execute(sequenceKeys.map { .get(key: $0) }, atomically: false)
            var sequence: [String: EventID] = [:]
            for (user, reply) in zip(users, replies) { sequence[user] = EventLog.eventId(stored: try reply.value()) }
            var commands: [BrokerCommand] = []
            commands.reserveCapacity(jobs.count + 1)
            var events: [RoutedEvent] = []
            events.reserveCapacity(jobs.count)
            for job in jobs {
                let record = job.record
                let userId = record.user.publicKey
                let eventId = EventID.next(after: sequence[userId], now: job.time)
                sequence[userId] = eventId
                let update = StatusUpdate(jobId: record.jobId, status: .created, userId: userId, timestamp: record.createdAt)
                events.append(
                    RoutedEvent(
                        name: names.event(.created), room: JobNames.userRoom(userId),
                        data: update.eventData(eventId: eventId, routedAt: job.time), eventId: eventId, timestamp: job.time))
                commands.append(
                    .set(key: names.record(record.jobId), value: job.bytes, expiry: .after(JobNames.recordLifetime), condition: .always))
            }
            commands.append(.push(jobs.map { Array($0.record.jobId.utf8) }, end: .head, queue: names.queue))
            return Transaction(commands: commands + eventLog.appendCommands(events))
        }
    }

    // MARK: Status updates

    /// Applies `updates` in order in one transaction watching every record, event counter and
    /// routed-marker involved: decided on the current state, committed only if none of it
    /// changed meanwhile (another node applying the same updates), else decided again.
    func commitUpdates(_ updates: [(update: StatusUpdate, fields: [String: JSONValue])]) async throws -> [StatusOutcome] {
        var outcomes = [StatusOutcome?](repeating: nil, count: updates.count)
        var valid: [Int] = []
        for (index, item) in updates.enumerated() {
            if JobID.isAcceptable(item.update.jobId), JobID.isAcceptable(item.update.userId) {
                valid.append(index)
            } else {
                outcomes[index] = .dropped(.invalid(.malformed("jobId or userId is not a usable id")))
            }
        }
        guard !valid.isEmpty else { return outcomes.map { $0! } }
        // Arrays keep first-seen order (the keys' order in the reads); sets keep the batch of
        // up to 128 updates linear.
        var jobIds: [String] = []
        var users: [String] = []
        var recordKeys: [String] = []
        var sequenceKeys: [String] = []
        var markers: [String] = []
        var markerOfUpdate = [String](repeating: "", count: updates.count)
        var seen: Set<String> = []
        seen.reserveCapacity(valid.count * 3)
        for index in valid {
            let update = updates[index].update
            let recordKey = names.record(update.jobId)
            if seen.insert(recordKey).inserted {
                jobIds.append(update.jobId)
                recordKeys.append(recordKey)
            }
            let sequenceKey = eventLog.sequenceKey(update.userId)
            if seen.insert(sequenceKey).inserted {
                users.append(update.userId)
                sequenceKeys.append(sequenceKey)
            }
            let marker = routedMarkerKey(update)
            markerOfUpdate[index] = marker
            if seen.insert(marker).inserted { markers.append(marker) }
        }
        let keys = recordKeys + sequenceKeys + markers
        let broker = self.broker
        let time = now()
        let decided: (outcomes: [Int: StatusOutcome], durations: [(JobStatus, Double)]) = try await broker.transaction(watching: keys) {
            let replies = try await broker.execute(keys.map { .get(key: $0) }, atomically: false)
            var records: [String: StoredRecord] = [:]
            // Records not in job format (written by other software), by job: their owner if it
            // can be read.
            var foreign: [String: String?] = [:]
            for (jobId, reply) in zip(jobIds, replies) {
                guard let bytes = try reply.value() else { continue }
                if let stored = StoredRecord(bytes: bytes) {
                    records[jobId] = stored
                } else {
                    foreign[jobId] = StoredRecord.owner(in: bytes)
                }
            }
            var sequence: [String: EventID] = [:]
            for (user, reply) in zip(users, replies.dropFirst(jobIds.count)) {
                sequence[user] = EventLog.eventId(stored: try reply.value())
            }
            var routedMarkers: Set<String> = []
            for (marker, reply) in zip(markers, replies.dropFirst(jobIds.count + users.count)) where try reply.value() != nil {
                routedMarkers.insert(marker)
            }
            var results: [Int: StatusOutcome] = [:]
            var durations: [(JobStatus, Double)] = []
            var changed: [String] = []
            var changedSet: Set<String> = []
            var markerCommands: [BrokerCommand] = []
            var events: [RoutedEvent] = []
            for index in valid {
                let (update, fields) = updates[index]
                if let owner = foreign[update.jobId] {
                    // Left as it is; with an owner to check, the status still reaches that
                    // owner, as for a job without a record (the agent ran it on the owner alone).
                    guard let owner else {
                        results[index] = .failed("\(JobError.corruptRecord(update.jobId))")
                        continue
                    }
                    guard owner == update.userId else {
                        results[index] = .dropped(.wrongOwner)
                        continue
                    }
                }
                let marker = markerOfUpdate[index]
                let decision = JobLifecycle.decide(
                    update, on: records[update.jobId]?.record, alreadyRoutedWithoutRecord: routedMarkers.contains(marker), now: time)
                if case .drop(let reason) = decision {
                    results[index] = .dropped(reason)
                    continue
                }
                let eventId = EventID.next(after: sequence[update.userId], now: time)
                sequence[update.userId] = eventId
                let event = RoutedEvent(
                    name: names.event(update.status), room: JobNames.userRoom(update.userId),
                    data: update.eventData(fields: fields, eventId: eventId, routedAt: time), eventId: eventId, timestamp: time)
                events.append(event)
                if case .apply(let record) = decision {
                    if records[update.jobId] != nil, changedSet.insert(update.jobId).inserted { changed.append(update.jobId) }
                    records[update.jobId]!.record = record
                    results[index] = .applied(event)
                    if record.status.isFinal, let created = Timestamp(iso8601: record.createdAt) {
                        durations.append((record.status, Double(time.milliseconds - created.milliseconds) / 1000))
                    }
                } else {
                    routedMarkers.insert(marker)
                    markerCommands.append(
                        .set(key: marker, value: Array("1".utf8), expiry: .after(JobNames.recordLifetime), condition: .always))
                    results[index] = .routedWithoutRecord(event)
                }
            }
            var commands = markerCommands
            for jobId in changed {
                commands.append(
                    .set(key: names.record(jobId), value: records[jobId]!.bytes, expiry: .keepExisting, condition: .always))
            }
            if !events.isEmpty { commands += eventLog.appendCommands(events) }
            return Transaction(commands: commands, value: (results, durations))
        }.value
        for (index, outcome) in decided.outcomes { outcomes[index] = outcome }
        if !decided.durations.isEmpty {
            stats.withLock { counters in
                for (status, seconds) in decided.durations { counters.durations.observe(status, seconds: seconds) }
            }
        }
        return outcomes.map { $0! }
    }

    /// Whether `error` means the broker is away or gone (so retrying piece by piece is pointless).
    static func isOutage(_ error: any Error) -> Bool {
        guard let error = error as? BrokerError else { return error is CancellationError }
        return error.isOutage || error.code == .shutDown
    }
}
