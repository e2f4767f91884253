/// The job state machine: what a status update does to a job record. Pure, no I/O; the
/// ``JobStore`` runs it inside an optimistic transaction, so every node that hears an update
/// decides on the same current record and only one decision to apply it commits.
public enum JobLifecycle {
    /// What to do with one update.
    public enum Decision: Sendable, Hashable {
        /// Store this record (the update appended to `history`) and route the event.
        case apply(JobRecord)
        /// No record exists (never created here, or expired after 24 h): there is nothing to
        /// update, but the named user still gets the event, once (see ``JobStore``).
        case routeWithoutRecord
        /// Leave everything as it is.
        case drop(StatusDropReason)
    }

    /// Decides what `update` does to `record`.
    ///
    /// - A status naming another user than the record's owner is dropped (`wrongOwner`).
    /// - Each status enters `history` once (`duplicate` otherwise) — except `retrying`, which
    ///   may repeat, once per attempt: it applies when its `attempts` exceeds the record's, or
    ///   equals it while the job is not retrying yet (without `attempts`: when the job is not
    ///   already retrying).
    /// - Nothing new is applied after a final status (`afterFinal`).
    /// - Parameter alreadyRoutedWithoutRecord: whether some node already routed this update
    ///   for a missing record.
    public static func decide(
        _ update: StatusUpdate, on record: JobRecord?, alreadyRoutedWithoutRecord: Bool = false, now: Timestamp
    ) -> Decision {
        guard var record else {
            return alreadyRoutedWithoutRecord ? .drop(.duplicate) : .routeWithoutRecord
        }
        guard update.userId == record.user.publicKey else { return .drop(.wrongOwner) }
        if update.status == .retrying {
            // Once per attempt. A repeat of the latest retry (same attempts, job still
            // retrying) or an older one (fewer attempts) is a duplicate.
            if let attempts = update.attempts {
                let isNew = attempts > record.attempts || (attempts == record.attempts && record.status != .retrying)
                guard isNew else { return .drop(.duplicate) }
            } else if record.status == .retrying {
                return .drop(.duplicate)
            }
        } else if update.status == .created || record.history.contains(where: { $0.status == update.status }) {
            return .drop(.duplicate)
        }
        // Checked after duplicates: a node that lags behind another sees its own copy of an
        // earlier status after the job finished, and that is a duplicate, not a late update.
        if record.status.isFinal { return .drop(.afterFinal) }
        let stamp = now.iso8601
        record.status = update.status
        record.updatedAt = stamp
        record.history.append(.init(status: update.status, timestamp: stamp))
        if let result = update.result { record.result = result }
        if let error = update.error { record.error = error }
        if let attempts = update.attempts { record.attempts = attempts }
        return .apply(record)
    }
}

/// Why a status update changed nothing.
public enum StatusDropReason: Sendable, Hashable, CustomStringConvertible {
    /// Refused before reaching a job: not JSON, a required field missing, an unknown status.
    case invalid(StatusMessageError)
    /// The update names another user than the job's owner.
    case wrongOwner
    /// The job already reached `done` or `error`.
    case afterFinal
    /// Already applied (by this node or another): the normal case with several nodes.
    case duplicate

    public var description: String {
        switch self {
        case .invalid(let error): return error.description
        case .wrongOwner: return "status names another user than the job's owner"
        case .afterFinal: return "job already finished"
        case .duplicate: return "already applied"
        }
    }
}
