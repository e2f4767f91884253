extension Broker {
    /// Pushes `values` onto `end` of `queue`, one after another, atomically (Redis order:
    /// `push([a, b], to: .head)` leaves `b` first). Returns the queue's new length.
    @discardableResult
    public func push(_ values: [[UInt8]], to end: QueueEnd, of queue: String) async throws -> Int {
        Int(try await execute(.push(values, end: end, queue: queue)).integer())
    }

    /// Pushes one value onto `end` of `queue`. Returns the queue's new length.
    @discardableResult
    public func push(_ value: [UInt8], to end: QueueEnd, of queue: String) async throws -> Int {
        try await push([value], to: end, of: queue)
    }

    /// Pushes a string's UTF-8 bytes. Returns the queue's new length.
    @discardableResult
    public func push(_ value: String, to end: QueueEnd, of queue: String) async throws -> Int {
        try await push([Array(value.utf8)], to: end, of: queue)
    }

    /// Pops a value from `end` of `queue`, or `nil` if it is empty.
    public func pop(from end: QueueEnd, of queue: String) async throws -> [UInt8]? {
        try await execute(.pop(end: end, queue: queue)).value()
    }

    /// Blocking pop from one queue; `nil` on timeout.
    public func blockingPop(from end: QueueEnd, of queue: String, timeout: Duration?) async throws -> [UInt8]? {
        try await blockingPop(from: end, of: [queue], timeout: timeout)?.value
    }

    /// Moves a value between queues atomically without waiting; `nil` if `source` is empty.
    public func move(
        from source: String, _ sourceEnd: QueueEnd, to destination: String, _ destinationEnd: QueueEnd
    ) async throws -> [UInt8]? {
        try await execute(
            .move(source: source, sourceEnd: sourceEnd, destination: destination, destinationEnd: destinationEnd)
        ).value()
    }

    /// Removes occurrences of `value` from `queue` (Redis `LREM`): `count > 0` the first
    /// `count` from the head, `count < 0` from the tail, `0` all. Returns how many went.
    @discardableResult
    public func remove(_ value: [UInt8], count: Int = 0, from queue: String) async throws -> Int {
        Int(try await execute(.remove(value: value, count: count, queue: queue)).integer())
    }

    /// The number of values in `queue` (0 if it does not exist).
    public func length(of queue: String) async throws -> Int {
        Int(try await execute(.length(queue: queue)).integer())
    }

    /// The values from `start` through `stop` inclusive; negative indices count from the tail.
    public func range(of queue: String, from start: Int = 0, through stop: Int = -1) async throws -> [[UInt8]] {
        try await execute(.range(queue: queue, start: start, stop: stop)).values()
    }

    /// Keeps only the values from `start` through `stop` inclusive (Redis `LTRIM`).
    public func trim(_ queue: String, from start: Int, through stop: Int) async throws {
        _ = try await execute(.trim(queue: queue, start: start, stop: stop))
    }
}
