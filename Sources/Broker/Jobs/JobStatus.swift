/// A job's lifecycle state. `done` and `error` are final: nothing after them is applied.
public enum JobStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case created
    case processing
    case retrying
    case done
    case error

    public var isFinal: Bool { self == .done || self == .error }
}
