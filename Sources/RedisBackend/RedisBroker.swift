public import Broker
public import Logging
public import ServiceLifecycle
import Synchronization

/// The production ``Broker``: Redis through hiredis.
///
/// Connections (each with its own I/O thread; see ``RedisConnection``):
/// - one shared **command connection**, auto-pipelined: concurrent calls from many tasks go out
///   in one write and their replies come back in order;
/// - one **subscriber connection**, multiplexing every in-process subscription
///   (reference-counted `SUBSCRIBE`/`PSUBSCRIBE`, resubscribed by itself after a reconnect);
/// - a pool of **dedicated connections** for blocking pops/moves and `WATCH` transactions.
///
/// An atomic batch (`execute(_:atomically: true)`) and the commands of a transaction run as
/// one Lua script that checks types first and rolls back with `DUMP`/`RESTORE` when a command
/// fails mid-way, since `MULTI`/`EXEC` alone does not undo anything (see ``AtomicBatch``).
///
/// When Redis goes away, calls fail fast with ``BrokerError/Code/connectionLost`` (a command
/// also times out after ``RedisConfiguration/commandTimeout``), and the broker reconnects with
/// capped, jittered exponential backoff, logs it and counts it (``reconnectCount``). Blocking
/// pops in progress retry on a fresh connection until their own timeout. Run it as a `Service`
/// (``run()``): it keeps the connections up proactively and closes them on graceful shutdown;
/// without `run()` it still connects on demand.
public final class RedisBroker: Broker, Service {
    public var backendName: String { "redis" }
    public let configuration: RedisConfiguration
    let logger: Logger

    let commands: ConnectionSlot
    let subscriber: ConnectionSlot
    let dedicated: DedicatedPool
    let registry = Mutex(SubscriptionRegistry())
    private let reconnects = Atomic<Int>(0)
    let scriptHashes = Mutex<AtomicBatch.Hashes?>(nil)
    private let commandConnectionExecutor: ConnectionExecutor

    /// An executor that runs tasks on the shared command connection's I/O thread (while it is
    /// connected; otherwise on the global executor).
    ///
    /// A task that makes many calls one after another, waiting for each, can prefer it:
    /// `withTaskExecutorPreference(broker.commandExecutor) { … }`. Each reply then resumes the
    /// task on the thread that read it, saving two thread switches per round trip (the most a
    /// strictly sequential caller can gain). Only for short, non-blocking work between calls:
    /// while such a task runs, that connection reads nothing.
    public var commandExecutor: any TaskExecutor { commandConnectionExecutor }

    /// A broker for `configuration`. Nothing connects until the first call or ``run()``.
    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "switchboard.redis")) {
        self.configuration = configuration
        self.logger = logger
        let owner = Box<RedisBroker>()
        let executor = ConnectionExecutor()
        commandConnectionExecutor = executor
        commands = ConnectionSlot(
            role: "commands", configuration: configuration, logger: logger,
            opener: { onClose in
                let (connection, hashes) = try await RedisConnection.open(
                    configuration,
                    setup: .init(
                        name: "commands", loadScripts: [AtomicBatch.script, AtomicBatch.leanScript], executor: executor,
                        onClose: onClose),
                    logger: logger)
                owner.value?.scriptHashes.withLock { $0 = AtomicBatch.Hashes(full: hashes[0], lean: hashes[1]) }
                owner.value?.subscriber.peerConnected()
                return connection
            },
            onReconnect: { _ in owner.value?.reconnects.add(1, ordering: .relaxed) })
        subscriber = ConnectionSlot(
            role: "subscriber", configuration: configuration, logger: logger,
            opener: { onClose in
                let connection = try await RedisConnection.open(
                    configuration,
                    setup: .init(
                        name: "subscriber",
                        pushHandler: { owner.value?.handlePush($0) },
                        onClose: { error in
                            owner.value?.subscriberLost(error)
                            onClose(error)
                        }),
                    logger: logger
                ).connection
                owner.value?.commands.peerConnected()
                return connection
            },
            onReconnect: { connection in
                owner.value?.reconnects.add(1, ordering: .relaxed)
                owner.value?.resubscribe(on: connection)
            })
        dedicated = DedicatedPool(capacity: configuration.dedicatedPoolSize) { name, onClose in
            try await RedisConnection.open(configuration, setup: .init(name: name, onClose: onClose), logger: logger)
                .connection
        }
        owner.value = self
    }

    /// A broker for a `redis://[user:password@]host:port[/db][?parameters]` URL, or `rediss://`
    /// for TLS (see ``RedisConfiguration/init(url:)`` for the parameters).
    /// - Throws: ``BrokerError/Code/invalidArgument`` for a malformed URL, an unknown parameter,
    ///   or a TLS file it names that cannot be read (see ``RedisTLS/check()``).
    public convenience init(url: String, logger: Logger = Logger(label: "switchboard.redis")) throws(BrokerError) {
        let configuration = try RedisConfiguration(url: url)
        try configuration.tls?.check()
        self.init(configuration: configuration, logger: logger)
    }

    /// Whether the command connection was ever opened: the server took this configuration.
    public var hasConnected: Bool { commands.hasConnected }

    /// Why the server refused this configuration before any connection was opened (wrong
    /// password or user, or a database it does not have), or `nil`. Unlike an outage, which
    /// the broker retries for ever, a refusal does not pass by itself: a process may stop at
    /// start with it rather than retry a setting that cannot work.
    public var settingsRefusal: BrokerError? { commands.refusal ?? subscriber.refusal }

    /// How many times a connection (command or subscriber) was re-established after a loss.
    public var reconnectCount: Int { reconnects.load(ordering: .relaxed) }

    /// Keeps the command and subscriber connections up until graceful shutdown or cancellation,
    /// then closes every connection: blocked callers and subscriptions end with
    /// ``BrokerError/Code/shutDown``.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { try? await self.warmUp() }
                group.addTask { await self.commands.maintain() }
                group.addTask { await self.subscriber.maintain() }
            }
        }
        shutdown()
    }

    /// Opens the command and subscriber connections and `dedicatedConnections` idle dedicated
    /// ones now, instead of on first use, so that the first blocking pop or transaction does not
    /// pay for a connection handshake. Optional: everything connects on demand anyway.
    public func warmUp(dedicatedConnections: Int = 1) async throws {
        _ = try await commands.connection()
        _ = try await subscriber.connection()
        try await withThrowingTaskGroup(of: RedisConnection.self) { group in
            for _ in 0..<max(0, min(dedicatedConnections, configuration.dedicatedPoolSize)) {
                group.addTask { try await self.dedicated.checkout() }
            }
            var opened: [RedisConnection] = []
            for try await connection in group { opened.append(connection) }
            for connection in opened { dedicated.checkin(connection) }
        }
    }

    /// Closes everything now (``run()`` does this when it ends).
    public func shutdown() {
        commands.shutdown()
        subscriber.shutdown()
        dedicated.shutdown()
        let subscriptions = registry.withLock { $0.allSubscriptions }
        for subscription in subscriptions {
            subscription.finish(throwing: BrokerError(.shutDown, "the redis broker was shut down"))
        }
    }

    // MARK: Commands

    public func execute(_ command: BrokerCommand) async throws -> Reply {
        var encoder = RESPEncoder()
        try encoder.append(command)
        return try await send(encoder)[0].reply()
    }

    public func execute(_ commands: [BrokerCommand], atomically: Bool) async throws -> [Reply] {
        guard !commands.isEmpty else { return [] }
        if atomically { return try await executeAtomically(commands) }
        // A command refused before sending shows as its own error; the others still run.
        var results = [Reply?](repeating: nil, count: commands.count)
        var encoder = RESPEncoder(capacity: 64 * commands.count)
        for (index, command) in commands.enumerated() {
            do {
                try encoder.append(command)
            } catch {
                results[index] = .error(error)
            }
        }
        if encoder.commandCount == commands.count {
            // Every command encoded (the usual case): one reply each, in order.
            return try await send(encoder).map { $0.replyCapturingError() }
        }
        if encoder.commandCount > 0 {
            var replies = try await send(encoder).makeIterator()
            for index in results.indices where results[index] == nil {
                results[index] = replies.next()?.replyCapturingError()
            }
        }
        return results.map { $0 ?? .null }
    }

    /// Sends encoded commands on the shared command connection, or on the transaction's own
    /// connection when the current task runs a transaction body (see ``WatchedConnection``).
    private func send(_ encoder: RESPEncoder) async throws(BrokerError) -> [RESPValue] {
        if let watched = watchedConnection {
            return try await watched.send(encoder.bytes, replies: encoder.commandCount, timeout: configuration.commandTimeout)
        }
        return try await commands.connection().send(
            encoder.bytes, replies: encoder.commandCount, timeout: configuration.commandTimeout)
    }

    private func executeAtomically(_ commands: [BrokerCommand]) async throws -> [Reply] {
        // Encoded (and so checked) before anything is sent.
        let hashes = scriptHashes.withLock({ $0 })
        var call = RESPEncoder(capacity: 64 * commands.count)
        try call.appendAtomicBatch(commands, hashes: hashes)
        let connection = try await self.commands.connection()
        var reply = try await connection.send(call.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
        if hashes != nil, case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            // The server lost its script cache (SCRIPT FLUSH); EVAL loads it again.
            var eval = RESPEncoder()
            try eval.appendAtomicBatch(commands, hashes: nil)
            reply = try await connection.send(eval.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
        }
        return try AtomicBatch.replies(Self.batchReplies(reply, count: commands.count), for: commands)
    }

    /// The replies of an atomic batch: the script's array, or its error thrown.
    static func batchReplies(_ reply: RESPValue, count: Int) throws -> [Reply] {
        switch try reply.reply() {
        case .array(let replies) where replies.count == count: return replies
        case let other:
            throw BrokerError(.unexpectedReply, "redis: an atomic batch of \(count) answered \(other)")
        }
    }

    public func ping() async throws {
        let connection = try await commands.connection()
        var encoder = RESPEncoder()
        encoder.append("PING")
        let reply = try await connection.send(encoder.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
        guard reply.text == "PONG" else {
            throw BrokerError(.unexpectedReply, "redis: PING answered \(reply)")
        }
    }
}

/// A late-bound weak reference: lets the connection callbacks built in `init` reach the broker
/// without a retain cycle.
final class Box<Value: AnyObject & Sendable>: Sendable {
    private struct Reference: Sendable {
        weak var value: Value?
    }

    private let storage = Mutex(Reference())

    var value: Value? {
        get { storage.withLock { $0.value } }
        set { storage.withLock { $0.value = newValue } }
    }
}
