import Broker
import BrokerTesting
import Foundation
@testable import Gateway
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing

@Suite("Plain WebSocket /ws (SPEC §3.2)")
struct WebSocketTests {
    static let logger = TestGateway.logger

    @Test func jobEventsArriveInLifecycleOrder() async throws {
        let test = try await TestGateway()
        let token = try await test.token("alice")
        try await test.live { client in
            try await withDeadline("a job's events over /ws", within: .seconds(20)) {
                try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    let connected = try await frames.next()
                    #expect(connected["type"] == "connected")
                    #expect(connected["payload"]?["userId"] == "alice")
                    #expect(connected["ts"]?.stringValue != nil)

                    let jobId = try await test.createJob(client, token: token)
                    var seen: [String] = []
                    var eventIds: [Int64] = []
                    while seen.last != "rebalance:done" {
                        let frame = try await frames.nextEvent()
                        #expect(frame["payload"]?["jobId"]?.stringValue == jobId)
                        #expect(frame["payload"]?["userId"] == "alice")
                        #expect(frame["payload"]?["eventId"] == frame["eventId"])
                        #expect(frame["ts"]?.stringValue != nil)
                        seen.append(frame["type"]?.stringValue ?? "?")
                        eventIds.append(Int64(frame["eventId"]?.stringValue ?? "") ?? -1)
                        if seen.last == "rebalance:done" {
                            #expect(frame["payload"]?["result"]?["fee"]?.doubleValue == 20)
                            #expect(frame["payload"]?["result"]?["remainingAmount"]?.doubleValue == 980)
                        }
                    }
                    // Lifecycle order, each event once (SPEC §3).
                    #expect(seen == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                    #expect(eventIds == eventIds.sorted() && Set(eventIds).count == eventIds.count)
                }
            }
        }
    }

    /// A token from `jsonwebtoken.sign({sub: 42})`: user "42" connects, creates a job that is
    /// theirs, and gets its events.
    @Test func aNumericSubjectNamesTheUserOfItsDecimalText() async throws {
        let test = try await TestGateway()
        let token = TokenAuthorityTests.handSigned(#"{"sub":42,"iat":1700000000}"#)
        try await test.live { client in
            try await withDeadline("a numeric subject's job events over /ws", within: .seconds(20)) {
                try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    #expect(try await frames.next()["payload"]?["userId"] == "42")
                    let jobId = try await test.createJob(client, token: token)
                    var seen: [String] = []
                    while seen.last != "rebalance:done" {
                        let frame = try await frames.nextEvent()
                        #expect(frame["payload"]?["jobId"]?.stringValue == jobId && frame["payload"]?["userId"] == "42")
                        seen.append(frame["type"]?.stringValue ?? "?")
                    }
                    #expect(seen == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                    let record = try await client.execute(
                        uri: "/api/v1/rebalance/\(jobId)", method: .get, headers: [.authorization: "Bearer \(token)"])
                    #expect(record.status == .ok && record.json?["user"]?["publicKey"] == "42")
                }
            }
        }
    }

    @Test(arguments: ["/ws", "/ws?token=garbage", "/ws?token=Bearer%20", "/ws?token=a.b.c"])
    func badTokenIsNeverUpgraded(_ path: String) async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.live { client in
            await #expect(throws: WebSocketClientError.webSocketUpgradeFailed) {
                try await client.ws(path, logger: Self.logger) { _, _, _ in
                    Issue.record("upgraded with \(path)")
                }
            }
            #expect(test.router.registry.counts.sessions == 0)
        }
    }

    @Test(arguments: [
        ("/ws?token=garbage", 401, "invalid token: not a JWT"), ("/ws", 401, "missing token"),
    ])
    func refusedUpgradeAnswersWithItsRealStatus(_ path: String, _ status: Int, _ message: String) async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("the refusal", within: .seconds(10)) {
                let response = try await EventStreamClient.connect(
                    port: port, path: path.replacingOccurrences(of: "VALID", with: token),
                    headers: [
                        ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
                        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ])
                #expect(Int(response.status.code) == status)
                let body = try await response.readToEnd()
                let json = try JSONDecoder().decode(JSONValue.self, from: Data(body.utf8))
                #expect(json["error"]?.stringValue == message)
                await response.close()
            }
        }
    }

    @Test func expiredTokenIsNeverUpgraded() async throws {
        let test = try await TestGateway(withAgent: false)
        let expired = try await TokenAuthorityTests.sign(
            .init(publicKey: "alice", exp: .init(value: Date(timeIntervalSinceNow: -1))))
        try await test.live { client in
            await #expect(throws: WebSocketClientError.webSocketUpgradeFailed) {
                try await client.ws("/ws?token=\(expired)", logger: Self.logger) { _, _, _ in }
            }
        }
    }

    @Test func authorizationHeaderIsAccepted() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("erin")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("connected frame", within: .seconds(10)) {
                try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(port)/ws",
                    configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]), logger: Self.logger
                ) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    let connected = try await frames.next()
                    #expect(connected["payload"]?["userId"] == "erin")
                }
            }
        }
    }

    @Test func pingSubscribeAndMalformedFramesKeepTheConnection() async throws {
        let test = try await TestGateway(withAgent: false)
        let alice = try await test.token("alice")
        let bob = try await test.token("bob")
        try await test.live { client in
            let bobsJob = try await test.createJob(client, token: bob)
            let alicesJob = try await test.createJob(client, token: alice)
            try await withDeadline("answers to client frames", within: .seconds(20)) {
                try await client.ws("/ws?token=\(alice)", logger: Self.logger) { inbound, outbound, _ in
                    var frames = FrameReader(inbound)
                    #expect(try await frames.next()["type"] == "connected")
                    // alice's own `created` event was waiting for her: offline delivery.
                    let offline = try await frames.next()
                    #expect(offline["type"] == "rebalance:created")
                    #expect(offline["payload"]?["jobId"]?.stringValue == alicesJob)

                    for garbage in ["not json", "[]", #"{"type":"dance"}"#, #"{"type":"subscribe"}"#] {
                        try await outbound.write(.text(garbage))
                        let error = try await frames.next()
                        #expect(error["type"] == "error", "\(garbage)")
                        #expect(error["payload"]?["message"]?.stringValue != nil)
                    }
                    try await outbound.write(.binary(ByteBuffer(string: "bytes")))
                    #expect(try await frames.next()["type"] == "error")

                    try await outbound.write(.text(#"{"type":"ping"}"#))
                    let pong = try await frames.next()
                    #expect(pong["type"] == "pong")
                    let now = Date().timeIntervalSince1970 * 1000
                    #expect(abs((pong["timestamp"]?.doubleValue ?? 0) - now) < 60_000)

                    try await outbound.write(.text(#"{"type":"subscribe","jobId":"\#(alicesJob)"}"#))
                    let subscribed = try await frames.next()
                    #expect(subscribed["type"] == "subscribed")
                    #expect(subscribed["payload"]?["jobId"]?.stringValue == alicesJob)
                    #expect(subscribed["payload"]?["status"] == "created")

                    try await outbound.write(.text(#"{"type":"subscribe","jobId":"\#(bobsJob)"}"#))
                    let refused = try await frames.next()
                    #expect(refused["type"] == "error")
                    #expect(refused["payload"]?["message"]?.stringValue?.contains("another user") == true)

                    try await outbound.write(.text(#"{"type":"subscribe","jobId":"1-missing"}"#))
                    #expect(try await frames.next()["type"] == "error")
                }
            }
        }
    }

    @Test func framesOver64KiBClose1009() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.live { client in
            let close = try await withDeadline("close after an oversized frame", within: .seconds(20)) {
                try await client.ws(
                    "/ws?token=\(token)", configuration: .init(maxFrameSize: 1 << 20), logger: Self.logger
                ) { inbound, outbound, _ in
                    var frames = FrameReader(inbound)
                    #expect(try await frames.next()["type"] == "connected")
                    try await outbound.write(.text(#"{"type":"ping","pad":""# + String(repeating: "x", count: 70_000) + "\"}"))
                    _ = try? await frames.drain()
                }
            }
            #expect(close?.closeCode == .messageTooLarge)
            try await eventually("the session to be gone") { test.router.registry.counts.sessions == 0 }
        }
    }

    @Test func replayAfterLastEventIdThenOfflineDelivery() async throws {
        let test = try await TestGateway()
        let token = try await test.token("frank")
        try await test.live { client in
            // First connection: sees the whole job, remembers the id of its first event.
            let first: [String] = try await withDeadline("first connection", within: .seconds(20)) {
                let box = ResultBox()
                try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    _ = try await frames.next()
                    _ = try await test.createJob(client, token: token)
                    var types: [String] = []
                    while types.last != "rebalance:done" {
                        let frame = try await frames.nextEvent()
                        types.append(frame["type"]?.stringValue ?? "")
                        if types.count == 1 { box.set(frame["eventId"]?.stringValue ?? "") }
                    }
                    box.append(types)
                }
                return [box.value] + box.values
            }
            // Reconnect presenting that id: exactly the later events, in order.
            let (firstId, later) = (first[0], Array(first.dropFirst(2)))
            #expect(later.last == "rebalance:done")
            try await withDeadline("replay", within: .seconds(20)) {
                try await client.ws("/ws?token=\(token)&lastEventId=\(firstId)", logger: Self.logger) {
                    inbound, outbound, _ in
                    var frames = FrameReader(inbound)
                    _ = try await frames.next()
                    for type in later { #expect(try await frames.next()["type"]?.stringValue == type) }
                    // Nothing else was queued: the next frame answers our ping.
                    try await outbound.write(.text(#"{"type":"ping"}"#))
                    #expect(try await frames.next()["type"] == "pong")
                }
            }
            // While no connection is open, a job runs; the next connection gets all of it.
            let jobId = try await test.createJob(client, token: token)
            try await eventually("the job to finish offline") {
                let record = try await test.broker.get(JobNames().record(jobId))
                return record.map { String(decoding: $0, as: UTF8.self).contains(#""status":"done""#) } ?? false
            }
            try await withDeadline("offline delivery", within: .seconds(20)) {
                try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    _ = try await frames.next()
                    var types: [String] = []
                    for _ in 0..<3 {
                        let frame = try await frames.next()
                        #expect(frame["payload"]?["jobId"]?.stringValue == jobId)
                        types.append(frame["type"]?.stringValue ?? "")
                    }
                    #expect(types == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                }
            }
        }
    }

    /// Refusing it would lock out a client that keeps presenting it; it is ignored, and said.
    @Test func lastEventIdNotIssuedIsIgnoredWithAnErrorFrame() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.live { client in
            try await withDeadline("the connection", within: .seconds(20)) {
                try await client.ws("/ws?token=\(token)&lastEventId=abc", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    #expect(try await frames.next()["type"] == "connected")
                    let notice = try await frames.next()
                    #expect(notice["type"] == "error")
                    #expect(notice["payload"]?["message"]?.stringValue?.hasPrefix(#"lastEventId "abc" was not issued"#) == true)
                    // Open and served: its user's events arrive.
                    let jobId = try await test.createJob(client, token: token)
                    let created = try await frames.nextEvent()
                    #expect(created["type"] == "rebalance:created")
                    #expect(created["payload"]?["jobId"]?.stringValue == jobId)
                }
            }
        }
    }

    /// A client that reads all the time is not a slow consumer because a burst (another
    /// service's pipeline of ws:emit, a batch of jobs finishing) arrives faster than one
    /// event-loop turn: the default outbound capacity holds such a burst.
    @Test func aBurstReachesAClientThatKeepsReading() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("bursty")
        try await test.live { client in
            try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, _, _ in
                var frames = FrameReader(inbound)
                #expect(try await frames.next()["type"] == "connected")
                let messages = (0..<800).map { index in
                    BrokerCommand.publish(
                        payload: Array(#"{"userId":"bursty","event":"note","data":{"n":\#(index),"text":"\#(String(repeating: "x", count: 150))"}}"#.utf8),
                        channel: JobNames.emitChannel)
                }
                _ = try await test.broker.execute(messages, atomically: false)
                var received = 0
                while received < 800 {
                    let frame = try await frames.next()
                    #expect(frame["type"] == "note")
                    received += 1
                }
                #expect(test.router.stats.sessions.slowClosed == 0)
            }
        }
    }

    @Test func slowConsumerIsDisconnectedWithoutHoldingOthersBack() async throws {
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, outboundQueueCapacity: 8), withAgent: false)
        let slowToken = try await test.token("slow")
        let fastToken = try await test.token("fast")
        try await test.live { client in
            let port = try #require(client.port)
            // The slow client never reads: its socket buffers fill, the server's write to it
            // blocks, its session overflows; the watchdog must drop the blocked connection.
            let slow = try await StalledWebSocketClient.connect(port: port, path: "/ws?token=\(slowToken)")
            try await eventually("the slow client's session") { test.router.registry.counts.sessions == 1 }
            try await withDeadline("the slow client to be cut off", within: .seconds(60)) {
                try await client.ws("/ws?token=\(fastToken)", logger: Self.logger) { inbound, _, _ in
                    var frames = FrameReader(inbound)
                    #expect(try await frames.next()["type"] == "connected")
                    let big = JSONValue.string(String(repeating: "z", count: 32 * 1024))
                    var sent = 0
                    while test.router.stats.sessions.slowClosed == 0, sent <= 5_000 {
                        try await test.router.emit("bulk", data: ["blob": big, "n": .integer(Int64(sent))], toUser: "slow")
                        sent += 1
                        if sent.isMultiple(of: 50) { try await Task.sleep(for: .milliseconds(5)) }
                    }
                    #expect(test.router.stats.sessions.slowClosed == 1)
                    try await eventually("the slow-consumer metric") {
                        let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                        return metrics.contains(#"switchboard_slow_consumer_disconnects_total{transport="websocket"} 1"#)
                    }
                    // At least the events that waited (more than the capacity of 8) are counted as dropped.
                    let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                    let dropped = metrics.split(separator: "\n")
                        .first { $0.hasPrefix(#"switchboard_events_dropped_total{transport="websocket"} "#) }
                        .flatMap { Int($0.split(separator: " ").last ?? "") }
                    #expect((dropped ?? 0) > 8, "\(dropped.map { "\($0)" } ?? "no switchboard_events_dropped_total")")
                    #expect(test.router.registry.counts.sessions == 1)
                    // The other user is unaffected.
                    try await test.router.emit("note:ok", data: ["ok": true], toUser: "fast")
                    #expect(try await frames.nextEvent()["type"] == "note:ok")
                }
            }
            await slow.close()
        }
    }

    @Test func clientWhoseWritesStayBlockedIsDroppedAfterTheStallTimeout() async throws {
        // A queue too large to overflow first: only the stall timeout can end this connection.
        let configuration = GatewayConfiguration(
            port: 0, outboundQueueCapacity: 100_000, watchdogInterval: .milliseconds(100),
            writeStallTimeout: .seconds(1))
        let test = try await TestGateway(configuration: configuration, withAgent: false, outboundByteCapacity: 1 << 30)
        let token = try await test.token("stuck")
        try await test.live { client in
            let port = try #require(client.port)
            let stuck = try await StalledWebSocketClient.connect(port: port, path: "/ws?token=\(token)")
            try await eventually("the session") { test.router.registry.hasSessions(ofUser: "stuck") }
            let big = JSONValue.string(String(repeating: "z", count: 32 * 1024))
            try await withDeadline("the stalled client to be dropped", within: .seconds(60)) {
                var sent = 0
                while test.router.registry.hasSessions(ofUser: "stuck"), sent < 2_000 {
                    try await test.router.emit("bulk", data: ["blob": big], toUser: "stuck")
                    sent += 1
                    if sent.isMultiple(of: 50) { try await Task.sleep(for: .milliseconds(20)) }
                }
                try await eventually("the session to be closed", within: .seconds(30)) {
                    !test.router.registry.hasSessions(ofUser: "stuck")
                }
            }
            #expect(test.router.stats.sessions.slowClosed == 0)
            await stuck.close()
        }
    }

    @Test func clientsArePingedAndOneThatDoesNotAnswerIsDisconnected() async throws {
        // A generous answer time: a loaded machine may take a second or more to answer a ping.
        let configuration = GatewayConfiguration(
            port: 0, watchdogInterval: .milliseconds(100), webSocketPingInterval: .milliseconds(500),
            webSocketPingTimeout: .seconds(4))
        let test = try await TestGateway(configuration: configuration, withAgent: false)
        let silentToken = try await test.token("silent")
        let token = try await test.token("alice")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("pings answered and unanswered", within: .seconds(30)) {
                try await client.ws("/ws?token=\(token)", logger: Self.logger) { inbound, outbound, _ in
                    // The client library answers pings (RFC 6455 §5.5.3) while the inbound is read.
                    let received = ResultBox()
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            var frames = FrameReader(inbound)
                            while true { received.append([try await frames.next()["type"]?.stringValue ?? "?"]) }
                        }
                        try await eventually("connected") { received.values == ["connected"] }
                        // This one never reads, so never answers.
                        let silent = try await StalledWebSocketClient.connect(
                            port: port, path: "/ws?token=\(silentToken)")
                        try await eventually("the silent client's session") {
                            test.router.registry.hasSessions(ofUser: "silent")
                        }
                        try await eventually("the silent client to be dropped", within: .seconds(20)) {
                            !test.router.registry.hasSessions(ofUser: "silent")
                        }
                        #expect(test.gateway.watchdog.pingsSent >= 2)
                        // The answering client was pinged as often, and is still served.
                        let pinged = test.gateway.watchdog.pingsSent
                        try await eventually("more pings", within: .seconds(20)) {
                            test.gateway.watchdog.pingsSent >= pinged + 3
                        }
                        #expect(test.router.registry.hasSessions(ofUser: "alice"))
                        try await outbound.write(.text(#"{"type":"ping"}"#))
                        try await eventually("a pong") { received.values == ["connected", "pong"] }
                        await silent.close()
                        group.cancelAll()
                    }
                }
            }
        }
    }

    @Test func thousandConnectionsLeaveNothingBehind() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("churn")
        try await test.live { client in
            try await withDeadline("1,000 connects and disconnects", within: .seconds(120)) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<10 {
                        group.addTask {
                            for _ in 0..<100 {
                                let user = worker.isMultiple(of: 2) ? token : try await test.token("churn-\(worker)")
                                try await client.ws("/ws?token=\(user)", logger: Self.logger) { inbound, _, _ in
                                    var frames = FrameReader(inbound)
                                    _ = try await frames.next()
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            try await eventually("every session to be gone") { test.router.registry.counts.sessions == 0 }
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.json?["websocket"] == ["connections": 0, "rooms": 0])
            #expect(test.router.stats.sessions.opened == 1_000)
            #expect(test.router.stats.sessions.closed == 1_000)
        }
    }
}

/// Values handed out of a `@Sendable` closure.
final class ResultBox: Sendable {
    private let storage = Mutex(("", [String]()))
    var value: String { storage.withLock { $0.0 } }
    var values: [String] { storage.withLock { $0.1 } }
    func set(_ value: String) { storage.withLock { $0.0 = value } }
    func append(_ values: [String]) { storage.withLock { $0.1 += values } }
}

