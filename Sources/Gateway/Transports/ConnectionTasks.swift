import ServiceLifecycle

/// Runs the connections' short async work (an upgrade's token check, a WebSocket's replay read,
/// a `subscribe` lookup, a Socket.IO client event) in one task group owned by the gateway's
/// service group, instead of tasks of their own that nothing would wait for.
///
/// At most `limit` pieces run at once; the rest wait their turn as closures. A reconnect storm
/// (every client of a restarted node at once) thus holds a bounded number of task stacks and
/// Redis requests in flight, not one per client: the memory freed afterwards would stay with the
/// process, fragmented, for its lifetime.
///
/// It is shut down after the server, so work keeps running while the server closes its
/// connections; after that, ``spawn(_:)`` refuses new work.
final class ConnectionTasks: Service, Sendable {
    private let limit: Int
    private let pending: AsyncStream<WebSocketWork>
    private let continuation: AsyncStream<WebSocketWork>.Continuation

    init(limit: Int = 64) {
        self.limit = max(1, limit)
        (pending, continuation) = AsyncStream.makeStream(of: WebSocketWork.self)
    }

    /// Runs `work` soon; `false` once the service stopped.
    func spawn(_ work: @escaping WebSocketWork) -> Bool {
        if case .enqueued = continuation.yield(work) { return true }
        return false
    }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await work in pending.cancelOnGracefulShutdown() {
                if running >= limit {
                    await group.next()
                    running -= 1
                }
                group.addTask { await work() }
                running += 1
            }
            continuation.finish()
        }
    }
}
