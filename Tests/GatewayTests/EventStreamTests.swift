import Broker
import BrokerTesting
import Foundation
import Gateway
import MemoryBackend
import HummingbirdTesting
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@Suite("Server-Sent Events /api/v1/events (SPEC §3.3)")
struct EventStreamTests {
    @Test func jobEventsArriveAsSSERecords() async throws {
        let test = try await TestGateway()
        let token = try await test.token("alice")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("a job's events over SSE", within: .seconds(20)) {
                let stream = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events", headers: [("Authorization", "Bearer \(token)")])
                #expect(stream.status == .ok)
                #expect(stream.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true)
                let connected = try #require(try await stream.nextEvent())
                #expect(connected.event == "connected")
                #expect(connected.data.contains(#""userId":"alice""#))

                let jobId = try await test.createJob(client, token: token)
                var names: [String] = []
                var ids: [Int64] = []
                while names.last != "rebalance:done" {
                    let record = try #require(try await stream.nextEvent())
                    let data = try JSONDecoder().decode(JSONValue.self, from: Data(record.data.utf8))
                    #expect(data["jobId"]?.stringValue == jobId)
                    #expect(data["eventId"]?.stringValue == record.id)
                    names.append(record.event)
                    ids.append(Int64(record.id ?? "") ?? -1)
                }
                // Lifecycle order, each event once (SPEC §3).
                #expect(names == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                #expect(ids == ids.sorted() && Set(ids).count == ids.count)
                await stream.close()
            }
        }
    }

    @Test func finishedJobsShowTheirDurationOnMetrics() async throws {
        let test = try await TestGateway()
        let token = try await test.token("hedy")
        try await test.live { client in
            _ = try await test.createJob(client, token: token)
            // The node that applied `done` recorded the job's creation-to-done time, once.
            try await eventually("the duration on /metrics") {
                let text = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                return text.contains(#"switchboard_job_duration_seconds_count{type="rebalance",outcome="done"} 1"#)
            }
            let text = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
            #expect(text.contains("# TYPE switchboard_job_duration_seconds histogram"))
            #expect(text.contains(#"switchboard_job_duration_seconds_bucket{type="rebalance",outcome="done",le="+Inf"} 1"#))
            #expect(text.contains(#"switchboard_job_duration_seconds_count{type="rebalance",outcome="error"} 0"#))
        }
    }

    @Test func lastEventIdHeaderAndQueryReplayExactlyTheLaterEvents() async throws {
        let test = try await TestGateway()
        let token = try await test.token("grace")
        try await test.live { client in
            let port = try #require(client.port)
            let jobId = try await test.createJob(client, token: token)
            try await eventually("the job to finish") {
                let record = try await test.broker.get(JobNames().record(jobId))
                return record.map { String(decoding: $0, as: UTF8.self).contains(#""status":"done""#) } ?? false
            }
            try await withDeadline("replays", within: .seconds(20)) {
                // No id: offline delivery of everything the user has not received.
                let first = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(token)")
                _ = try await first.nextEvent()
                var records: [SSERecord] = []
                for _ in 0..<3 { records.append(try #require(try await first.nextEvent())) }
                #expect(records.map(\.event) == ["rebalance:created", "rebalance:processing", "rebalance:done"])
                await first.close()

                let createdId = try #require(records[0].id)
                let byHeader = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events?token=\(token)", headers: [("Last-Event-ID", createdId)])
                _ = try await byHeader.nextEvent()
                #expect(try await byHeader.nextEvent()?.id == records[1].id)
                #expect(try await byHeader.nextEvent()?.id == records[2].id)
                await byHeader.close()

                let byQuery = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events?token=\(token)&lastEventId=\(records[1].id!)")
                _ = try await byQuery.nextEvent()
                #expect(try await byQuery.nextEvent()?.event == "rebalance:done")
                await byQuery.close()
            }
        }
    }

    @Test(arguments: ["", "?token=garbage", "?token=Bearer%20x.y.z"])
    func badTokenIs401(_ query: String) async throws {
        let test = try await TestGateway(withAgent: false)
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("401", within: .seconds(10)) {
                let stream = try await EventStreamClient.connect(port: port, path: "/api/v1/events\(query)")
                #expect(stream.status == .unauthorized)
                #expect(try await stream.readToEnd().contains(#""error""#))
                await stream.close()
            }
            #expect(test.router.registry.counts.sessions == 0)
        }
    }

    /// An EventSource does not reconnect after an error status: a 503 while Redis restarts
    /// would end its stream for good. It opens, and its replay comes when the backend is back.
    @Test func crossOriginStreamsCarryTheAllowedOriginAndOpenWhileTheBackendIsAway() async throws {
        let outage = OutageBroker(base: MemoryBroker())
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, corsOrigin: "https://app.example"), withAgent: false,
            broker: outage)
        let token = try await test.token("cora")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("the streams", within: .seconds(10)) {
                let stream = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events?token=\(token)", headers: [("Origin", "https://app.example")])
                #expect(stream.status == .ok)
                #expect(stream.headers["Access-Control-Allow-Origin"] == ["https://app.example"])
                #expect(stream.headers["Access-Control-Allow-Credentials"] == ["true"])
                #expect(try await stream.nextEvent()?.event == "connected")
                await stream.close()
                try await eventually("the session to close") { test.router.registry.counts.sessions == 0 }

                try await test.router.emit("note", data: ["n": 1], toUser: "cora", durable: true)
                outage.setDown(true)
                let opened = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events?token=\(token)", headers: [("Origin", "https://app.example")])
                #expect(opened.status == .ok)
                #expect(opened.headers["Access-Control-Allow-Origin"] == ["https://app.example"])
                #expect(try await opened.nextEvent()?.event == "connected")
                outage.setDown(false)
                let replayed = try await opened.nextEvent()
                #expect(replayed?.event == "note")
                #expect(replayed?.data.contains(#""n":1"#) == true)
                await opened.close()
            }
        }
    }

    /// An EventSource does not reconnect after an error status: a 400 would end its stream for good.
    @Test func lastEventIdNotIssuedIsIgnoredWithAComment() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("alice")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("the stream", within: .seconds(20)) {
                let stream = try await EventStreamClient.connect(
                    port: port, path: "/api/v1/events?token=\(token)", headers: [("Last-Event-ID", "yesterday")])
                #expect(stream.status == .ok)
                #expect(try await stream.next()?.event == "connected")
                let comment = try await stream.next()
                #expect(comment?.event == ":")
                #expect(comment?.data.contains(#"lastEventId "yesterday" was not issued"#) == true)
                let jobId = try await test.createJob(client, token: token)
                let created = try await stream.nextEvent()
                #expect(created?.event == "rebalance:created")
                #expect(created?.data.contains(jobId) == true)
                await stream.close()
            }
        }
    }

    @Test func idleStreamGetsHeartbeats() async throws {
        let test = try await TestGateway(
            configuration: GatewayConfiguration(port: 0, heartbeatInterval: .milliseconds(100)), withAgent: false)
        let token = try await test.token("heidi")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("two heartbeats", within: .seconds(10)) {
                let stream = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(token)")
                #expect(try await stream.nextEvent()?.event == "connected")
                #expect(try await stream.next()?.event == ":")
                #expect(try await stream.next()?.event == ":")
                // An event still gets through between heartbeats.
                try await test.router.emit("notification", data: ["text": "hi"], toUser: "heidi")
                #expect(try await stream.nextEvent()?.event == "notification")
                await stream.close()
            }
        }
    }

    @Test func clientGoingAwayClosesItsSession() async throws {
        let test = try await TestGateway(withAgent: false)
        let token = try await test.token("ivan")
        try await test.live { client in
            let port = try #require(client.port)
            for _ in 0..<20 {
                let stream = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(token)")
                _ = try await stream.nextEvent()
                #expect(test.router.registry.counts.sessions == 1)
                await stream.close()
                // Noticed without waiting for a heartbeat (30 s by default).
                try await eventually("the session to close", within: .seconds(5)) {
                    test.router.registry.counts.sessions == 0
                }
            }
        }
    }

    @Test func slowConsumerIsDisconnectedWithoutHoldingOthersBack() async throws {
        let test = try await TestGateway(withAgent: false, outboundCapacity: 8)
        let slowToken = try await test.token("slow")
        let fastToken = try await test.token("fast")
        try await test.live { client in
            let port = try #require(client.port)
            try await withDeadline("the slow client to be cut off", within: .seconds(60)) {
                // The slow client never reads; its socket buffers fill, then its session's.
                let slow = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(slowToken)")
                let fast = try await EventStreamClient.connect(port: port, path: "/api/v1/events?token=\(fastToken)")
                _ = try await fast.nextEvent()
                let big = JSONValue.string(String(repeating: "z", count: 32 * 1024))
                var sent = 0
                while test.router.stats.sessions.slowClosed == 0 {
                    try await test.router.emit("bulk", data: ["blob": big, "n": .integer(Int64(sent))], toUser: "slow")
                    sent += 1
                    if sent.isMultiple(of: 50) { try await Task.sleep(for: .milliseconds(5)) }
                    if sent > 5_000 { break }
                }
                #expect(test.router.stats.sessions.slowClosed == 1)
                try await eventually("the slow session to be gone") {
                    test.router.registry.counts.sessions == 1
                }
                // The other user is unaffected.
                try await test.router.emit("notification", data: ["ok": true], toUser: "fast")
                #expect(try await fast.nextEvent()?.event == "notification")
                // The server drops the connection: reading what was buffered reaches its end.
                _ = try? await slow.readToEnd()
                await fast.close()
            }
            try await eventually("the slow-consumer metric") {
                let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get).body)
                return metrics.contains(#"switchboard_slow_consumer_disconnects_total{transport="sse"} 1"#)
            }
        }
    }
}
