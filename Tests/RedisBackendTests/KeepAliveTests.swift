import Broker
@testable import RedisBackend
import Testing

/// When a connection pings, as a state machine without I/O.
@Suite("Keep-alive decisions")
struct KeepAliveDecisionTests {
    let start = ContinuousClock.now

    /// The decisions for looks at `start` plus each offset.
    func decisions(_ keepAlive: inout KeepAlive, at offsets: [Duration], busy: Bool) -> [Bool] {
        offsets.map { keepAlive.pingIsDue(now: start + $0, busy: busy) }
    }

    @Test func anIdleConnectionPingsOncePerInterval() {
        var keepAlive = KeepAlive(interval: .seconds(30), replyTimeout: .seconds(5), now: start)
        let pings = decisions(&keepAlive, at: [.seconds(29), .seconds(30), .seconds(31), .seconds(60)], busy: false)
        // The interval starts again after each PING.
        #expect(pings == [false, true, false, true])
    }

    @Test func aBusyConnectionNeverPings() {
        var keepAlive = KeepAlive(interval: .seconds(1), replyTimeout: .seconds(5), now: start)
        let busy = decisions(&keepAlive, at: (1...100).map { .seconds($0) }, busy: true)
        #expect(!busy.contains(true))
        // Idle from the last busy look on, not from the start.
        #expect(decisions(&keepAlive, at: [.milliseconds(100_500), .seconds(101)], busy: false) == [false, true])
    }

    @Test(arguments: [nil, Duration.zero, .seconds(-1)])
    func noPositiveIntervalMeansNoPing(_ interval: Duration?) {
        var keepAlive = KeepAlive(interval: interval, replyTimeout: .seconds(5), now: start)
        #expect(decisions(&keepAlive, at: [.seconds(1), .seconds(3600)], busy: false) == [false, false])
    }

    @Test func aPushModePingWaitsForAnythingToBeRead() {
        var keepAlive = KeepAlive(interval: .seconds(1), replyTimeout: .seconds(5), now: start)
        #expect(keepAlive.answerDeadline == nil)
        keepAlive.pingSentInPushMode(now: start + .seconds(1))
        #expect(keepAlive.answerDeadline == start + .seconds(6))
        keepAlive.pingSentInPushMode(now: start + .seconds(2))
        #expect(keepAlive.answerDeadline == start + .seconds(6), "the first unanswered PING counts")
        keepAlive.readSomething()
        #expect(keepAlive.answerDeadline == nil)
    }
}

/// A redis-server with `timeout N` closes clients that sent no command for N to N + 1 seconds
/// (it counts whole seconds). With a keep-alive interval of 0.3 s the broker's idle connections
/// (command, subscriber without channels, idle dedicated, and one blocked in `BLPOP`, whose
/// wait is issued again every 0.3 s) outlive 4.5 s of quiet under `timeout 2`; without it the
/// server closes them, so the first test can fail. The main test uses 2 s rather than 1: with 1, a PING held up for 0.7 s (the whole
/// suite loading two cores) was enough to lose a connection.
@Suite(
    "Redis keep-alive",
    .enabled(if: RedisTestServer.isConfigured, RedisTestServer.skipReason),
    .enabled(if: RedisServerProcess.isAvailable, "redis-server is not on PATH")
)
struct KeepAliveTests {
    @Test(.timeLimit(.minutes(1)))
    func idleConnectionsOutliveTheServersTimeout() async throws {
        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url, configure: { $0.keepAliveInterval = .milliseconds(300) }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            try server.configure(["timeout", "2"])
            // Two dedicated connections at least (run() warms up one of its own meanwhile).
            try await broker.warmUp(dedicatedConnections: 2)
            let before = try server.clients()
            #expect(before.keys.filter { $0.hasPrefix("switchboard-dedicated-") }.count >= 2)
            #expect(before["switchboard-commands"] != nil && before["switchboard-subscriber"] != nil)
            // One dedicated connection blocks across the quiet time, the other stays idle.
            async let popped = broker.blockingPop(from: .head, of: ["keepalive:queue"], timeout: .seconds(30))
            #expect(await eventually { (try? server.cli(["INFO", "clients"]))?.contains("blocked_clients:1") ?? false })

            // The quiet time is the condition under test, not an event to wait for: nothing
            // here touches the broker; the server's idle clock runs.
            try await Task.sleep(for: .milliseconds(4_500))

            let after = try server.clients()
            #expect(after.mapValues(\.id) == before.mapValues(\.id), "no connection was closed and reopened")
            #expect(broker.reconnectCount == 0)
            #expect(after["switchboard-commands"]?.lastCommand == "ping")
            #expect(after["switchboard-subscriber"]?.lastCommand == "ping")
            #expect(after.values.map(\.lastCommand).filter { $0 != "ping" } == ["blpop"],
                    "every idle connection pinged, the blocked one did not")
            // The blocked one issued its BLPOP again every 0.3 s: Redis, which spares it the
            // timeout only while it is blocked, would otherwise find it idle for 4 s the moment
            // it is served, and could close it with the popped value.
            #expect(after.values.filter { $0.lastCommand == "blpop" }.allSatisfy { (0..<2).contains($0.idle) },
                    "the blocked connection waits in slices of the keep-alive interval")
            try await broker.push("kept", to: .tail, of: "keepalive:queue")
            #expect(try await popped == PoppedValue(queue: "keepalive:queue", value: Array("kept".utf8)))

            // In subscribed mode Redis answers PING with a ["pong", ""] push: it must not
            // disturb the subscription.
            try await broker.subscribe(to: "keepalive:channel") { subscription async throws in
                #expect(await eventually(timeout: .seconds(5)) {
                    (try? server.clients())?["switchboard-subscriber"]?.lastCommand == "ping"
                }, "the subscribed connection pinged")
                #expect(try await broker.publish("after pings", to: "keepalive:channel") == 1)
                #expect(try await nextMessage(subscription)?.payload == Array("after pings".utf8))
            }
            #expect(try server.clients().mapValues(\.id) == before.mapValues(\.id))
            #expect(broker.reconnectCount == 0)
        }
        await server.kill()
    }

    /// The control: without keep-alive the same server closes the idle connections (and the
    /// broker reconnects, which is the churn and the warnings keep-alive avoids).
    @Test(.timeLimit(.minutes(1)))
    func withoutKeepAliveTheServerClosesIdleConnections() async throws {
        let server = try RedisServerProcess()
        try server.start()
        try await withRedisBroker(url: server.url, configure: { $0.keepAliveInterval = nil }) { broker in
            #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
            try server.configure(["timeout", "1"])
            try await broker.warmUp()
            #expect(await eventually { broker.reconnectCount >= 2 },
                    "the command and subscriber connections were closed")
        }
        await server.kill()
    }

    /// A connection that sends commands more often than the interval sends no PING at all.
    /// The broker is not run, so only the command connection opens.
    @Test(.timeLimit(.minutes(1)))
    func aBusyConnectionSendsNoPing() async throws {
        let server = try RedisServerProcess()
        try server.start()
        var configuration = try RedisConfiguration(url: server.url)
        // Far above a round trip, so that a slow machine cannot make the busy connection idle
        // for long enough by accident.
        configuration.keepAliveInterval = .seconds(1)
        let broker = RedisBroker(configuration: configuration)
        defer { broker.shutdown() }
        #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
        _ = try server.cli(["CONFIG", "RESETSTAT"])
        // 2.5 s of commands one after another: never idle for the interval.
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(2500)
        var sent = 0
        while clock.now < end {
            try await broker.set("keepalive:busy", to: "\(sent)")
            sent += 1
        }
        #expect(try server.pingCalls() == 0, "a busy connection pinged (\(sent) commands sent)")
        // The measure can see pings: idle now, the connection soon sends one.
        #expect(await eventually { ((try? server.pingCalls()) ?? 0) >= 1 })
    }

    /// A URL written for redis-py sets the interval (`health_check_interval`) and the
    /// connections' names (`client_name`) here too. The broker is not run: one connection.
    @Test(.timeLimit(.minutes(1)))
    func theURLsHealthCheckIntervalAndClientNameApply() async throws {
        let server = try RedisServerProcess()
        try server.start()
        let broker = try RedisBroker(url: server.url + "?client_name=billing&health_check_interval=0.3")
        defer { broker.shutdown() }
        #expect(await eventually { (try? await broker.ping()) != nil }, "the private redis-server came up")
        #expect(try server.clients()["billing-commands"] != nil && server.clients()["switchboard-commands"] == nil)
        // The default interval (30 s) would not ping within the test's minute.
        #expect(await eventually(timeout: .seconds(10)) { (try? server.clients())?["billing-commands"]?.lastCommand == "ping" })
        await server.kill()
    }
}

extension RedisServerProcess {
    /// The server's clients with a name, by name: their id and the last command they sent.
    /// The named clients, each with its id, last command and seconds since its last command.
    func clients() throws -> [String: (id: String, lastCommand: String, idle: Int)] {
        var clients: [String: (id: String, lastCommand: String, idle: Int)] = [:]
        for line in try cli(["CLIENT", "LIST"]).split(separator: "\n") {
            var fields: [Substring: Substring] = [:]
            for field in line.split(separator: " ") {
                guard let equals = field.firstIndex(of: "=") else { continue }
                fields[field[..<equals]] = field[field.index(after: equals)...]
            }
            guard let name = fields["name"], !name.isEmpty, let id = fields["id"] else { continue }
            clients[String(name)] = (String(id), String(fields["cmd"] ?? ""), fields["idle"].flatMap { Int($0) } ?? -1)
        }
        return clients
    }

    /// How many `PING`s the server ran since its statistics were reset.
    func pingCalls() throws -> Int {
        let stats = try cli(["INFO", "commandstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_ping:") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(calls) ?? 0
    }
}
