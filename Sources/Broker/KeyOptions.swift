/// What happens to a key's time to live when it is set.
public enum Expiry: Sendable, Hashable {
    /// The key lives until deleted; an existing TTL is cleared (plain `SET`).
    case never
    /// The key expires after the duration (`SET … PX`). Must be positive.
    case after(Duration)
    /// The key keeps whatever TTL it had (`SET … KEEPTTL`).
    case keepExisting
}

/// When a set applies.
public enum SetCondition: Sendable, Hashable {
    /// Always (plain `SET`).
    case always
    /// Only if the key does not exist (`SET … NX`).
    case ifAbsent
    /// Only if the key exists (`SET … XX`).
    case ifPresent
}

/// The remaining life of a key (Redis `PTTL`).
public enum TimeToLive: Sendable, Hashable {
    /// No such key (`PTTL` → -2).
    case missing
    /// The key exists and has no TTL (`PTTL` → -1).
    case persistent
    /// The key expires after this duration.
    case expiresIn(Duration)
}
