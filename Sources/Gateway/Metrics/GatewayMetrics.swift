import CoreMetrics
public import Prometheus

/// The gateway's own metrics, created through one factory so that `/metrics` shows them even
/// when the process-wide `MetricsSystem` was not bootstrapped (tests, embedding apps).
///
/// `switchboard serve` bootstraps `MetricsSystem` with a factory over the same registry, so the
/// router's and backends' metrics (malformed statuses, jobs by outcome, Redis reconnects)
/// appear on `/metrics` too.
public struct GatewayMetrics: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    let connectionsOpen: [Transport: CoreMetrics.Meter]
    let connectionsOpened: [Transport: CoreMetrics.Counter]
    let eventsDelivered: [Transport: CoreMetrics.Counter]
    let slowConsumerDisconnects: [Transport: CoreMetrics.Counter]
    let eventsDropped: [Transport: CoreMetrics.Counter]
    let authFailures: CoreMetrics.Counter
    let malformedFrames: CoreMetrics.Counter
    let jobsCreated: CoreMetrics.Counter
    let backendDown: CoreMetrics.Counter

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
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        func byTransport<M>(_ make: (Transport) -> M) -> [Transport: M] {
            Dictionary(uniqueKeysWithValues: Transport.allCases.map { ($0, make($0)) })
        }
        connectionsOpen = byTransport {
            CoreMetrics.Meter(label: "switchboard_connections", dimensions: [("transport", $0.rawValue)], factory: factory)
        }
        connectionsOpened = byTransport {
            CoreMetrics.Counter(label: "switchboard_connections_opened_total", dimensions: [("transport", $0.rawValue)], factory: factory)
        }
        eventsDelivered = byTransport {
            CoreMetrics.Counter(label: "switchboard_events_delivered_total", dimensions: [("transport", $0.rawValue)], factory: factory)
        }
        slowConsumerDisconnects = byTransport {
            CoreMetrics.Counter(
                label: "switchboard_slow_consumer_disconnects_total", dimensions: [("transport", $0.rawValue)],
                factory: factory)
        }
        // Events a connection never got because it fell behind (see Session.discardedCount).
        eventsDropped = byTransport {
            CoreMetrics.Counter(label: "switchboard_events_dropped_total", dimensions: [("transport", $0.rawValue)], factory: factory)
        }
        authFailures = CoreMetrics.Counter(label: "switchboard_auth_failures_total", factory: factory)
        malformedFrames = CoreMetrics.Counter(label: "switchboard_malformed_client_frames_total", factory: factory)
        jobsCreated = CoreMetrics.Counter(label: "switchboard_jobs_created_total", factory: factory)
        backendDown = CoreMetrics.Counter(label: "switchboard_health_backend_unreachable_total", factory: factory)
    }

    func connectionOpened(_ transport: Transport) {
        connectionsOpened[transport]?.increment()
        connectionsOpen[transport]?.increment()
    }

    func connectionClosed(_ transport: Transport) {
        connectionsOpen[transport]?.decrement()
    }

    func delivered(_ transport: Transport, count: Int = 1) {
        eventsDelivered[transport]?.increment(by: count)
    }

    /// A connection closed for falling behind, with the events it never got.
    func slowConsumer(_ transport: Transport, dropped: Int) {
        slowConsumerDisconnects[transport]?.increment()
        if dropped > 0 { eventsDropped[transport]?.increment(by: dropped) }
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
