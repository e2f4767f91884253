import Broker
import RedisBackend
import Testing

/// AUTH (with and without a user name), SELECT, a hung server, each on a redis-server of the
/// test's own.
@Suite(
    "Redis connection setup",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason),
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct ConnectionSetupTests {
    @Test(.timeLimit(.minutes(1)))
    func authenticatesWithPasswordOrUserAndSelectsTheDatabase() async throws {
        let server = try RedisServerProcess()
        try server.start(["--requirepass", "s3cret", "--user", "alice", "on", ">pa:ss", "~*", "&*", "+@all"])
        defer { server.resume() }
        let base = "127.0.0.1:\(server.port)"

        // Password only (the default user), database 2.
        try await withRedisBroker(url: "redis://:s3cret@\(base)/2") { broker in
            #expect(await eventually { (try? await broker.ping()) != nil })
            try await broker.set("setup:key", to: "in db 2")
        }
        // A named ACL user (a colon in the password, percent-encoded), database 0 does not see it.
        try await withRedisBroker(url: "redis://alice:pa%3Ass@\(base)") { broker in
            try await broker.ping()
            #expect(try await broker.get("setup:key") == nil)
        }
        try await withRedisBroker(url: "redis://alice:pa%3Ass@\(base)/2") { broker in
            let value = try await broker.string("setup:key")
            #expect(value == "in db 2")
        }
        // The database as redis-py's URL parameter names it selects the same.
        try await withRedisBroker(url: "redis://alice:pa%3Ass@\(base)?db=2") { broker in
            let value = try await broker.string("setup:key")
            #expect(value == "in db 2")
        }
        // Wrong credentials: a clear error, not a hang.
        try await withRedisBroker(url: "redis://alice:wrong@\(base)") { broker in
            do {
                try await broker.ping()
                Issue.record("a wrong password must be refused")
            } catch let error as BrokerError {
                #expect(error.code == .authenticationFailed)
            }
        }
        await server.kill()
    }

    @Test(.timeLimit(.minutes(1)))
    func aHungServerTimesOutInsteadOfHanging() async throws {
        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url, configure: { $0.commandTimeout = .milliseconds(300) }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil })
            try await broker.subscribe(to: "hung:warm") { _ in }  // the subscriber connection is up too
            server.pause()
            do {
                _ = try await broker.get("hung:key")
                Issue.record("a command to a stopped server must fail")
            } catch let error as BrokerError {
                #expect(error.code == .timedOut || error.code == .connectionLost)
            }
            do {
                try await broker.subscribe(to: "hung:channel") { _ in }
                Issue.record("subscribing on a stopped server must fail")
            } catch let error as BrokerError {
                #expect(error.code == .timedOut || error.code == .connectionLost)
            }
            server.resume()
            #expect(await eventually { (try? await broker.ping()) != nil }, "the broker recovers once the server does")
        }
        await server.kill()
    }
}
