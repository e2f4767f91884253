import ServiceLifecycle

/// Runs the connections' short async work (a WebSocket's replay read, a `subscribe` lookup, a
/// Socket.IO client event) in one task group owned by the gateway's service group, instead of
/// tasks of their own that nothing would wait for.
///
/// It is shut down after the server, so work keeps running while the server closes its
/// connections; after that, ``spawn(_:)`` refuses new work.
final class ConnectionTasks: Service, Sendable {
    private let pending: AsyncStream<WebSocketWork>
    private let continuation: AsyncStream<WebSocketWork>.Continuation

    init() {
        (pending, continuation) = AsyncStream.makeStream(of: WebSocketWork.self)
    }

    /// Runs `work` soon; `false` once the service stopped.
    func spawn(_ work: @escaping WebSocketWork) -> Bool {
        if case .enqueued = continuation.yield(work) { return true }
        return false
    }

    func run() async {
        await withDiscardingTaskGroup { group in
            for await work in pending.cancelOnGracefulShutdown() {
                group.addTask { await work() }
            }
            continuation.finish()
        }
    }
}
