public import Prometheus

/// The gateway's own metrics, made on the registry `/metrics` renders (so they show even when
/// the process-wide `MetricsSystem` was not bootstrapped: tests, embedding apps), each with
/// its `# HELP` line.
///
/// `switchboard serve` bootstraps `MetricsSystem` with a factory over the same registry, so the
/// router's and backends' metrics (malformed statuses, jobs by outcome, Redis reconnects)
/// appear on `/metrics` too.
public struct GatewayMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry

    let connectionsOpen: [Transport: Gauge]
    let connectionsOpened: [Transport: Counter]
    let eventsDelivered: [Transport: Counter]
    let slowConsumerDisconnects: [Transport: Counter]
    let eventsDropped: [Transport: Counter]
    let authFailures: Counter
    let malformedFrames: Counter
    let jobsCreated: Counter
    let backendDown: Counter

    /// Reads the backend's reconnect count at scrape time (Redis), if it has one.
    let backendReconnects: (@Sendable () -> Int)?

    /// - Parameters:
    ///   - registry: where the metrics are kept.
    ///   - backendReconnects: the backend's count of re-established connections, if any.
    public init(
        registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        backendReconnects: (@Sendable () -> Int)? = nil
    ) {
        self.registry = registry
        self.backendReconnects = backendReconnects
        /// A metric named `name` whole (no namespace or unit parts added).
        func metric(_ name: String, help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        func byTransport<M>(_ make: ([(String, String)]) -> M) -> [Transport: M] {
            Dictionary(uniqueKeysWithValues: Transport.allCases.map { ($0, make([("transport", $0.rawValue)])) })
        }
        connectionsOpen = byTransport {
            registry.makeGauge(
                descriptor: metric(
                    "switchboard_connections",
                    help: "Client connections open now, by transport (sessions_open counts the router's view of the same)."),
                labels: $0)
        }
        connectionsOpened = byTransport {
            registry.makeCounter(
                descriptor: metric("switchboard_connections_opened_total", help: "Client connections opened, by transport."),
                labels: $0)
        }
        eventsDelivered = byTransport {
            registry.makeCounter(
                descriptor: metric(
                    "switchboard_events_delivered_total",
                    help: "Events written to clients, by transport (router_deliveries_total counts those handed to sessions)."),
                labels: $0)
        }
        slowConsumerDisconnects = byTransport {
            registry.makeCounter(
                descriptor: metric(
                    "switchboard_slow_consumer_disconnects_total",
                    help: "Clients disconnected for falling behind: more than --outbound-capacity events, or 8 MiB of event data, waiting."),
                labels: $0)
        }
        // Events a connection never got because it fell behind (see Session.discardedCount).
        eventsDropped = byTransport {
            registry.makeCounter(
                descriptor: metric(
                    "switchboard_events_dropped_total",
                    help: "Events discarded with a slow client's connection (its replay can still bring them)."),
                labels: $0)
        }
        authFailures = registry.makeCounter(
            descriptor: metric("switchboard_auth_failures_total", help: "Tokens refused (missing, invalid, expired), on every transport."))
        malformedFrames = registry.makeCounter(
            descriptor: metric(
                "switchboard_malformed_client_frames_total", help: "Client frames that were not understood (answered with an error)."))
        jobsCreated = registry.makeCounter(
            descriptor: metric("switchboard_jobs_created_total", help: "Jobs created through this gateway's HTTP API."))
        backendDown = registry.makeCounter(
            descriptor: metric(
                "switchboard_health_backend_unreachable_total", help: "Health checks that found the backend unreachable (answered 503)."))
    }

    func connectionOpened(_ transport: Transport) {
        connectionsOpened[transport]?.increment()
        connectionsOpen[transport]?.increment()
    }

    func connectionClosed(_ transport: Transport) {
        connectionsOpen[transport]?.decrement()
    }

    func delivered(_ transport: Transport, count: Int = 1) {
        eventsDelivered[transport]?.increment(by: Int64(count))
    }

    /// A connection closed for falling behind, with the events it never got.
    func slowConsumer(_ transport: Transport, dropped: Int) {
        slowConsumerDisconnects[transport]?.increment()
        if dropped > 0 { eventsDropped[transport]?.increment(by: Int64(dropped)) }
    }

    func jobCreated() { jobsCreated.increment() }
    func authFailed() { authFailures.increment() }
    func malformedFrame() { malformedFrames.increment() }
    func backendUnreachable() { backendDown.increment() }

    /// The Prometheus text exposition of every metric in the registry.
    public func render() -> [UInt8] {
        var bytes = registry.emitToBuffer()
        if let backendReconnects {
            let text = "# HELP switchboard_backend_reconnects_total Backend connections re-established after a loss.\n"
                + "# TYPE switchboard_backend_reconnects_total counter\n"
                + "switchboard_backend_reconnects_total \(backendReconnects())\n"
            bytes.append(contentsOf: text.utf8)
        }
        return bytes
    }
}

/// A real-time transport a client connects with.
public enum Transport: String, Sendable, CaseIterable {
    case websocket
    case sse
    case socketio
}
