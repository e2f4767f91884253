import Broker
import BrokerTesting
import Logging
import RedisBackend
import Testing

/// `unix://`: the backend over a Unix domain socket to a private redis-server, as a gateway or
/// agent on Redis's own machine connects. The whole conformance suite runs over it.
@Suite("Redis over a Unix socket", .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH"))
struct UnixSocketTests {
    @Test(.timeLimit(.minutes(3)))
    func conformanceSuiteOverASocket() async throws {
        let server = try RedisServerProcess()
        try server.startListeningOnSocket()
        var configuration = try RedisConfiguration(url: "unix://\(server.socketPath)")
        configuration.dedicatedPoolSize = 64
        var logger = Logger(label: "test.redis.unix")
        logger.logLevel = .warning
        let broker = RedisBroker(configuration: configuration, logger: logger)
        let peer = RedisBroker(configuration: configuration, logger: logger)
        defer {
            broker.shutdown()
            peer.shutdown()
        }
        #expect(await eventually(timeout: .seconds(20)) { (try? await broker.ping()) != nil }, "the redis-server came up")
        try await broker.warmUp(dedicatedConnections: 16)
        try await peer.warmUp(dedicatedConnections: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for check in BrokerConformance.cases {
                group.addTask { try await check.run(on: broker, peer: peer) }
            }
            try await group.waitForAll()
        }
        // The server saw socket clients, not TCP ones (redis-cli's own is on TCP).
        let clients = try server.cli(["CLIENT", "LIST"])
        #expect(clients.split(separator: "\n").contains { $0.contains("name=switchboard-commands") && $0.contains("addr=/") },
                "\(clients)")
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func reconnectsWhenTheServerComesBack() async throws {
        let server = try RedisServerProcess()
        try server.startListeningOnSocket()
        try await withRedisBroker(url: "unix://\(server.socketPath)?db=1") { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the redis-server came up")
            try await broker.set("unix:key", to: "in db 1")
            #expect(try server.cli(["-n", "1", "GET", "unix:key"]).contains("in db 1"))
            try await broker.subscribe(to: "unix:channel") { subscription in
                #expect(try await broker.publish("before", to: "unix:channel") == 1)
                #expect(try await nextMessage(subscription)?.payload == Array("before".utf8))
                await server.kill()
                #expect(await eventually { (try? await broker.ping()) == nil }, "calls fail during the outage")
                try server.startListeningOnSocket()
                #expect(await eventually { (try? await broker.ping()) != nil }, "the broker reconnected")
                #expect(await eventually { ((try? await broker.publish("after", to: "unix:channel")) ?? 0) == 1 })
                #expect(try await nextMessage(subscription)?.payload == Array("after".utf8))
            }
        }
        await server.kill()
    }

    /// A socket that is not there fails the call at once, naming the path.
    @Test(.timeLimit(.minutes(1)))
    func aMissingSocketIsNamed() async throws {
        try await withRedisBroker(url: "unix:///nonexistent/redis.sock") { broker in
            do {
                try await broker.ping()
                Issue.record("the broker connected")
            } catch let error as BrokerError {
                #expect([.connectionFailed, .connectionLost].contains(error.code), "\(error)")
                #expect(error.message.contains("/nonexistent/redis.sock"), "\(error.message)")
            }
        }
    }
}
