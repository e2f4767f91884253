import Broker
import Synchronization

/// The dedicated connection of one optimistic transaction while its body runs.
///
/// `WATCH` only guards reads made after the server ran it, so the classic sequence costs a
/// round trip for `WATCH` before the first read. Here `WATCH` is not sent on its own: it goes
/// out in front of the body's first read, in the same write, on the same connection (Redis
/// runs a connection's commands in order, so the read still follows the watch), or in front
/// of `MULTI … EXEC` when the body reads nothing. A transaction that reads costs two round
/// trips instead of three.
///
/// ``RedisBroker`` finds it through a task-local while the body runs, and sends the body's
/// non-atomic commands (``RedisBroker/execute(_:)``, ``RedisBroker/execute(_:atomically:)``
/// with `atomically: false`) here instead of to the shared command connection.
final class WatchedConnection: Sendable {
    /// The transaction whose body the current task is running, if any.
    @TaskLocal static var current: WatchedConnection?

    let connection: RedisConnection
    /// Which broker opened it: a body that talks to another broker is not redirected.
    let owner: ObjectIdentifier
    /// `WATCH <keys>` until it has been sent.
    private let pendingWatch: Mutex<[UInt8]?>
    /// Set when a send failed: the connection's state is unknown and it must be closed.
    private let broken = Atomic<Bool>(false)

    init(connection: RedisConnection, owner: ObjectIdentifier, keys: [String]) {
        self.connection = connection
        self.owner = owner
        if keys.isEmpty {
            pendingWatch = Mutex(nil)
        } else {
            var watch = RESPEncoder()
            watch.append(strings: ["WATCH"] + keys)
            pendingWatch = Mutex(watch.bytes)
        }
    }

    /// Whether `WATCH` went out (so an abandoned transaction must `UNWATCH`).
    var watchSent: Bool { pendingWatch.withLock { $0 == nil } }

    /// Whether a send failed (the connection must be discarded, not reused).
    var isBroken: Bool { broken.load(ordering: .relaxed) }

    /// Sends `bytes` (`replies` commands), preceded by the `WATCH` if it has not gone out yet,
    /// and returns their replies (without the `WATCH`'s).
    func send(_ bytes: [UInt8], replies: Int, timeout: Duration?) async throws(BrokerError) -> [RESPValue] {
        let result: Result<(values: [RESPValue], watched: Bool), BrokerError> = await withUnsafeContinuation { continuation in
            // Under the lock so that a concurrent read of the same body cannot overtake the
            // WATCH on the connection.
            pendingWatch.withLock { pending in
                let watched = pending != nil
                var request = bytes
                if let watch = pending {
                    request = watch + bytes
                    pending = nil
                }
                connection.enqueue(
                    RedisConnection.Request(bytes: request, replies: replies + (watched ? 1 : 0), timeout: timeout) {
                        continuation.resume(returning: $0.map { ($0, watched) })
                    })
            }
        }
        switch result {
        case .failure(let error):
            broken.store(true, ordering: .relaxed)
            throw error
        case .success(let (values, watched)):
            guard watched else { return values }
            if case .error(let message) = values.first {
                broken.store(true, ordering: .relaxed)
                throw BrokerError(.connectionLost, "redis: WATCH failed: \(message)")
            }
            return Array(values.dropFirst())
        }
    }
}
