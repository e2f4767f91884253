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
        try await runConformanceSuite(
            over: try RedisConfiguration(url: "unix://\(server.socketPath)"), warmUp: (16, 4), label: "unix"
        ) {
            // The brokers are socket clients (redis-cli's own is on TCP).
            let clients = try server.cli(["CLIENT", "LIST"]).split(separator: "\n")
            #expect(clients.contains { $0.contains("name=switchboard-commands") && $0.contains("addr=/") }, "\(clients)")
        }
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
            try await expectReconnect(of: broker, killing: server, channel: "unix:channel") {
                try server.startListeningOnSocket()
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
