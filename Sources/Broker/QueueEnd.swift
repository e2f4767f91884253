/// Which end of a queue an operation works on. Redis calls the head "left" and the tail "right".
public enum QueueEnd: Sendable, Hashable {
    /// The first element (Redis `L…`: `LPUSH`, `LPOP`, `LEFT`).
    case head
    /// The last element (Redis `R…`: `RPUSH`, `RPOP`, `RIGHT`).
    case tail
}

/// A value taken by a blocking pop, with the queue it came from.
public struct PoppedValue: Sendable, Hashable {
    public var queue: String
    public var value: [UInt8]

    public init(queue: String, value: [UInt8]) {
        self.queue = queue
        self.value = value
    }
}
