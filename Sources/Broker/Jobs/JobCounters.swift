/// What a ``JobStore`` has done since it started: for `/api/v1/stats` and `/metrics`.
public struct JobCounters: Sendable, Hashable {
    /// Jobs created (record stored and id queued).
    public var created = 0
    /// Status messages handled (every message heard on the status channel).
    public var statusReceived = 0
    /// Updates this node applied to a record (and routed as an event).
    public var applied = 0
    /// Updates routed for a job without a record (never created here, or expired).
    public var routedWithoutRecord = 0
    /// Updates another node (or an earlier message) had already applied.
    public var duplicates = 0
    /// Messages that were not JSON objects.
    public var malformed = 0
    /// Messages lacking `jobId`, `status` or `userId`.
    public var missingField = 0
    /// Messages naming an unknown status.
    public var unknownStatus = 0
    /// Updates naming another user than the job's owner.
    public var wrongOwner = 0
    /// Updates that arrived after the job's final status.
    public var afterFinal = 0
    /// Updates that could not be applied because the broker failed (logged with the reason).
    public var failed = 0
    /// Creation-to-final-status times of the jobs whose final status this node applied.
    public var durations = JobDurations()

    public init() {}

    /// Messages refused as invalid (malformed + missing field + unknown status).
    public var invalid: Int { malformed + missingField + unknownStatus }

    /// Every dropped message: invalid, wrong owner, after final (duplicates are not drops).
    public var dropped: Int { invalid + wrongOwner + afterFinal }

    /// Messages whose handling has finished, whatever the outcome (``statusReceived`` counts
    /// them on arrival; the difference is what is still being applied).
    public var handled: Int { applied + routedWithoutRecord + duplicates + dropped + failed }

    mutating func count(_ reason: StatusDropReason) {
        switch reason {
        case .invalid(.malformed): malformed += 1
        case .invalid(.missingField): missingField += 1
        case .invalid(.unknownStatus): unknownStatus += 1
        case .wrongOwner: wrongOwner += 1
        case .afterFinal: afterFinal += 1
        case .duplicate: duplicates += 1
        }
    }
}
