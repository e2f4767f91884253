import Synchronization

/// This node's Engine.IO sessions by sid. A polling client's requests find their session
/// here, so they must reach the node that created it (sticky sessions behind a balancer).
final class EngineIOConnectionTable: Sendable {
    private let connections = Mutex<[String: EngineIOConnection]>([:])
    private let nextLinkID = Atomic<UInt64>(1)

    /// The session `sid`, if it lives on this node.
    func connection(_ sid: String) -> EngineIOConnection? {
        connections.withLock { $0[sid] }
    }

    /// Adds a new session; `false` if its sid is taken (a 120-bit random id: never, in practice).
    func insert(_ connection: EngineIOConnection) -> Bool {
        connections.withLock { table in
            guard table[connection.sid] == nil else { return false }
            table[connection.sid] = connection
            return true
        }
    }

    /// Forgets `connection` (only that one, should its sid have been reused).
    func remove(_ connection: EngineIOConnection) {
        connections.withLock { table in
            if table[connection.sid] === connection { table[connection.sid] = nil }
        }
    }

    /// Every session, for the timer sweep and shutdown.
    var all: [EngineIOConnection] { connections.withLock { Array($0.values) } }

    /// How many sessions live on this node.
    var count: Int { connections.withLock { $0.count } }

    /// A new id for an attached WebSocket.
    func makeLinkID() -> UInt64 { nextLinkID.add(1, ordering: .relaxed).oldValue }
}
