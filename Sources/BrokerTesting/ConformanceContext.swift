public import Broker
import Synchronization

/// What a ``ConformanceCase`` works with: the broker under test, a peer standing for another
/// node, and a name prefix no other case uses.
public struct ConformanceContext: Sendable {
    /// The broker under test.
    public let broker: any Broker
    /// A second client of the same backend (another "node"); may be `broker` itself.
    public let peer: any Broker
    /// A prefix unique to this run of the case, e.g. `"t:k3v9q2xa:"`. Only letters, digits and
    /// colons, so it is literal inside a glob pattern too.
    public let prefix: String

    private let ledger = KeyLedger()

    init(broker: any Broker, peer: any Broker) {
        self.broker = broker
        self.peer = peer
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        self.prefix = "t:" + String((0..<10).map { _ in alphabet.randomElement()! }) + ":"
    }

    /// A key (or queue) name private to this case; removed again when the case ends.
    public func key(_ name: String) -> String {
        let key = prefix + name
        ledger.record(key)
        return key
    }

    /// A channel name private to this case.
    public func channel(_ name: String) -> String {
        prefix + name
    }

    /// Deletes every key handed out, so a shared server does not fill up with test data.
    func removeKeys() async {
        let keys = ledger.all()
        guard !keys.isEmpty else { return }
        // Best effort: a case that failed because the backend is down must still report that
        // failure, not a cleanup error.
        _ = try? await broker.delete(keys)
    }
}

/// The keys a case used, for cleanup.
private final class KeyLedger: Sendable {
    private let keys = Mutex<Set<String>>([])

    func record(_ key: String) {
        keys.withLock { _ = $0.insert(key) }
    }

    func all() -> [String] {
        keys.withLock { Array($0) }
    }
}
