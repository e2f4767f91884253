import Broker
import Hummingbird
import Logging
import NIOCore

/// The routes for operators and visitors, none authenticated: `/health`, `/api/v1/stats`,
/// `/metrics` and the live page at `/`.
struct OperatorRoutes: Sendable {
    let gateway: Gateway

    func register(on router: Hummingbird.Router<GatewayRequestContext>) {
        let page = ByteBuffer(string: LivePage.html(jobTypes: gateway.router.stores.values.map(\.names.type).sorted()))
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: page)
            )
        }
        router.get("/health") { _, context in try await health(context) }
        router.get("/api/v1/stats") { _, context in try await stats(context) }
        router.get("/metrics") { _, _ in metrics() }
    }

    /// What a client is told of a backend failure: a broker error's message, without the type
    /// and code in front (`BrokerError.connectionLost: …`), which mean nothing to it.
    private static func describe(_ error: any Error) -> String {
        (error as? BrokerError)?.message ?? "\(error)"
    }

    private func health(_ context: GatewayRequestContext) async throws -> Response {
        let counts = gateway.router.registry.counts
        let connections: JSONValue = [
            "connections": .integer(Int64(counts.sessions)), "rooms": .integer(Int64(counts.rooms)),
        ]
        do {
            try await gateway.broker.ping()
        } catch {
            gateway.metrics.backendUnreachable()
            context.logger.warning("health: backend unreachable", metadata: ["error": "\(error)"])
            return JSONBody.response(
                status: .serviceUnavailable,
                [
                    "status": "unavailable", "backend": .string(gateway.broker.backendName),
                    "error": .string(Self.describe(error)), "websocket": connections,
                ])
        }
        return JSONBody.response(
            status: .ok, ["status": "ok", "backend": .string(gateway.broker.backendName), "websocket": connections])
    }

    private func stats(_ context: GatewayRequestContext) async throws -> Response {
        let stats = gateway.router.stats
        var queues: [String: JSONValue] = [:]
        for store in gateway.router.stores.values {
            do {
                queues[store.names.type] = [
                    "queueLength": .integer(Int64(try await gateway.broker.length(of: store.names.queue))),
                    "processing": .integer(Int64(try await gateway.broker.length(of: store.names.processing))),
                ]
            } catch {
                queues[store.names.type] = ["error": .string(Self.describe(error))]
            }
        }
        let main = queues[gateway.configuration.names.type]
        var jobs: [String: JSONValue] = [:]
        for (type, counters) in stats.jobs {
            jobs[type] = [
                "created": .integer(Int64(counters.created)), "statusReceived": .integer(Int64(counters.statusReceived)),
                "applied": .integer(Int64(counters.applied)), "duplicates": .integer(Int64(counters.duplicates)),
                "routedWithoutRecord": .integer(Int64(counters.routedWithoutRecord)),
                "malformed": .integer(Int64(counters.invalid)), "wrongOwner": .integer(Int64(counters.wrongOwner)),
                "afterFinal": .integer(Int64(counters.afterFinal)), "failed": .integer(Int64(counters.failed)),
            ]
        }
        return JSONBody.response(
            status: .ok,
            [
                "backend": .string(gateway.broker.backendName),
                "connections": .integer(Int64(stats.counts.sessions)),
                "rooms": .integer(Int64(stats.counts.rooms)),
                "users": .integer(Int64(stats.counts.users)),
                "subscriptions": .integer(Int64(stats.subscriptions)),
                "queueLength": main?["queueLength"] ?? .null,
                "processing": main?["processing"] ?? .null,
                "queues": .object(queues),
                "sessions": [
                    "opened": .integer(Int64(stats.sessions.opened)), "closed": .integer(Int64(stats.sessions.closed)),
                    "slowConsumersClosed": .integer(Int64(stats.sessions.slowClosed)),
                    "eventsDelivered": .integer(Int64(stats.sessions.eventsDelivered)),
                    "duplicatesSkipped": .integer(Int64(stats.sessions.duplicatesSkipped)),
                ],
                "jobs": .object(jobs),
                "emit": [
                    "received": .integer(Int64(stats.emitReceived)), "malformed": .integer(Int64(stats.emitMalformed)),
                ],
            ])
    }

    private func metrics() -> Response {
        var bytes = gateway.metrics.render()
        bytes.append(contentsOf: RouterExposition.text(gateway.router.stats).utf8)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }
}

/// The router's own counters in Prometheus text format, read at scrape time so they need no
/// metrics plumbing inside the router.
enum RouterExposition {
    static func text(_ stats: RouterStats) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Int)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name)\(labels) \(value)\n" }
        }
        metric("switchboard_sessions_open", "gauge", "Open sessions (connections) on this node.", [("", stats.counts.sessions)])
        metric("switchboard_rooms", "gauge", "Rooms with at least one session.", [("", stats.counts.rooms)])
        metric("switchboard_users_connected", "gauge", "Users with at least one session.", [("", stats.counts.users)])
        metric(
            "switchboard_router_deliveries_total", "counter", "Events handed to sessions.",
            [("", stats.sessions.eventsDelivered)])
        metric(
            "switchboard_router_duplicates_skipped_total", "counter", "Deliveries skipped as already delivered.",
            [("", stats.sessions.duplicatesSkipped)])
        metric(
            "switchboard_sessions_slow_closed_total", "counter", "Sessions closed for falling behind.",
            [("", stats.sessions.slowClosed)])
        metric(
            "switchboard_emit_messages_total", "counter", "Messages heard on ws:emit.",
            [("{outcome=\"ok\"}", stats.emitReceived), ("{outcome=\"malformed\"}", stats.emitMalformed)])
        var statuses: [(String, Int)] = []
        var created: [(String, Int)] = []
        for (type, c) in stats.jobs.sorted(by: { $0.key < $1.key }) {
            created.append(("{type=\"\(type)\"}", c.created))
            for (outcome, value) in [
                ("applied", c.applied), ("routed_without_record", c.routedWithoutRecord), ("duplicate", c.duplicates),
                ("malformed", c.malformed), ("missing_field", c.missingField), ("unknown_status", c.unknownStatus),
                ("wrong_owner", c.wrongOwner), ("after_final", c.afterFinal), ("failed", c.failed),
            ] {
                statuses.append(("{type=\"\(type)\",outcome=\"\(outcome)\"}", value))
            }
        }
        metric("switchboard_jobs_created_by_type_total", "counter", "Jobs created on this node.", created)
        metric("switchboard_status_messages_total", "counter", "Status messages by outcome.", statuses)
        out += "# HELP switchboard_job_duration_seconds Time from a job's creation to the final status this node applied.\n"
        out += "# TYPE switchboard_job_duration_seconds histogram\n"
        for (type, c) in stats.jobs.sorted(by: { $0.key < $1.key }) {
            for (outcome, histogram) in [("done", c.durations.done), ("error", c.durations.error)] {
                let labels = "type=\"\(type)\",outcome=\"\(outcome)\""
                let bounds = JobDurations.bucketBounds.map { "\($0)" } + ["+Inf"]
                for (bound, count) in zip(bounds, histogram.cumulative) {
                    out += "switchboard_job_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(count)\n"
                }
                out += "switchboard_job_duration_seconds_sum{\(labels)} \(histogram.sumSeconds)\n"
                out += "switchboard_job_duration_seconds_count{\(labels)} \(histogram.count)\n"
            }
        }
        return out
    }
}
