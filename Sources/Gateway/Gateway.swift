import HTTPTypes
public import Broker
public import Hummingbird
import HummingbirdCore
public import Logging
public import ServiceLifecycle

/// One gateway node: the HTTP API, the plain WebSocket and SSE transports, the live page, all
/// on one Hummingbird server, on top of a job ``JobRouter`` and its session registry.
///
/// The gateway is a `Service`: `run()` serves until graceful shutdown, then stops accepting,
/// ends every WebSocket and SSE connection and returns. The job router is a service of its
/// own (it may serve several transports); run both in one `ServiceGroup`, the router first so
/// it is shut down last:
///
/// ```swift
/// let router = JobRouter(broker: broker)
/// let gateway = Gateway(configuration: .init(), router: router, authority: authority)
/// try await ServiceGroup(services: [router, gateway], ...).run()
/// ```
public struct Gateway: Service {
    public let configuration: GatewayConfiguration
    /// The job router: stores, event routing, this node's sessions.
    public let router: JobRouter
    /// Verifies and issues tokens.
    public let authority: TokenAuthority
    public let metrics: GatewayMetrics
    public let logger: Logger
    /// The user of the demo token (memory-backed demo only).
    public let demoUser: String?
    /// Drops the WebSocket and SSE connections of clients that stopped reading (one sweep for all).
    let watchdog: ConnectionWatchdog
    /// Keeps a storm of requests failing on the backend from flooding the log (all are counted).
    let logThrottle = LogThrottle()
    /// Runs the WebSocket and SSE connections' async work (they hold no task of their own).
    let connectionTasks = ConnectionTasks()
    private let onServerRunning: @Sendable (Int) async -> Void
    private var extraRoutes: [@Sendable (Hummingbird.Router<GatewayRequestContext>) -> Void]
    private var extraWebSocketEndpoints: [WebSocketEndpoint]

    /// - Parameters:
    ///   - demoUser: in demo mode, the user `GET /api/v1/demo-token` issues tokens for.
    ///   - onServerRunning: called with the bound port once the server listens.
    public init(
        configuration: GatewayConfiguration, router: JobRouter, authority: TokenAuthority,
        metrics: GatewayMetrics = GatewayMetrics(), logger: Logger = Logger(label: "switchboard.gateway"),
        demoUser: String? = nil, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.router = router
        self.authority = authority
        self.metrics = metrics
        self.logger = logger
        self.demoUser = demoUser
        self.watchdog = ConnectionWatchdog(
            interval: configuration.watchdogInterval, stallTimeout: configuration.writeStallTimeout,
            pingInterval: configuration.webSocketPingInterval,
            pingTimeout: configuration.webSocketPingTimeout ?? configuration.webSocketPingInterval, logger: logger)
        self.onServerRunning = onServerRunning
        self.extraRoutes = []
        self.extraWebSocketEndpoints = []
    }

    /// The broker the router works on.
    public var broker: any Broker { router.broker }

    /// Adds HTTP routes to the same server: `register` is given the HTTP router.
    public func addingRoutes(_ register: @escaping @Sendable (Hummingbird.Router<GatewayRequestContext>) -> Void)
        -> Gateway
    {
        var copy = self
        copy.extraRoutes.append(register)
        return copy
    }

    /// Adds the Socket.IO transport: its polling routes and its WebSocket endpoint.
    public func addingSocketIO(_ transport: SocketIOTransport) -> Gateway {
        var copy = addingRoutes(transport.register)
        copy.extraWebSocketEndpoints.append(transport.webSocketEndpoint)
        return copy
    }

    /// The user a presented token speaks for; counts failures.
    func authenticate(_ presented: String?) async throws -> String {
        do {
            return try await authority.authenticate(presented)
        } catch {
            metrics.authFailed()
            // Rate-limited: a client retrying a stale token (the memory demo's secret changes at
            // each start) would otherwise flood the log; the metric counts every refusal.
            logThrottle.log(
                "auth", .notice, "refused a token", metadata: ["reason": "\((error as? GatewayError)?.message ?? "\(error)")"],
                to: logger)
            throw error
        }
    }

    /// The HTTP router with every route and middleware of the gateway.
    public func makeHTTPRouter() -> Hummingbird.Router<GatewayRequestContext> {
        // HEAD wherever GET is (RFC 9110 §9.3.2; Express, which the original ran on, does the same):
        // monitors and load balancers probe `/health` with it.
        let http = Hummingbird.Router(context: GatewayRequestContext.self, options: .autoGenerateHeadEndpoints)
        if let origin = configuration.corsOrigin {
            http.add(middleware: CrossOriginMiddleware(allowOrigin: origin))
        }
        http.add(middleware: JSONErrorMiddleware())
        OperatorRoutes(gateway: self).register(on: http)
        APIRoutes(gateway: self).register(on: http)
        for register in extraRoutes { register(http) }
        return http
    }

    /// The Hummingbird application serving the gateway; `services` run beside the server and
    /// are shut down after it (pass the job router here when not running it elsewhere). The
    /// connection watchdog and the connections' task group run beside them, shut down last.
    public func makeApplication(services: [any Service] = []) -> some ApplicationProtocol {
        let http = makeHTTPRouter()
        let onServerRunning = self.onServerRunning
        let endpoints = [WebSocketTransport(gateway: self).endpoint] + extraWebSocketEndpoints
        let (maxFrameSize, watchdog, connectionTasks) = (configuration.maxFrameSize, watchdog, connectionTasks)
        let (headTimeout, http1) = (configuration.requestHeadTimeout, HTTP1Channel.Configuration(idleTimeout: .init(configuration.idleTimeout)))
        let streams = EventStreams(gateway: self, spawn: connectionTasks.spawn)
        let server = HTTPServerBuilder { responder in
            GatewayChannel(
                responder: responder, endpoints: endpoints, http1: http1, requestHeadTimeout: headTimeout, maxFrameSize: maxFrameSize,
                watchdog: watchdog, spawn: connectionTasks.spawn, makeEventStream: { EventStreamConnection(streams: streams) })
        }
        return Application(
            router: http,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil,
                availableConnectionsDelegate: ConnectionLimit(maximum: connectionLimit, logger: logger)),
            services: [watchdog, connectionTasks] + services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// The most client connections served at once (``GatewayConfiguration/maxConnections``).
    public var connectionLimit: Int {
        configuration.maxConnections ?? ConnectionLimit.fromOpenFileLimit()
    }

    /// Serves until graceful shutdown.
    /// - Throws: ``ListenError`` when it cannot listen at the configured host and port.
    public func run() async throws {
        do {
            try await makeApplication().run()
        } catch {
            throw ListenError.from(error, host: configuration.host, port: configuration.port) ?? error
        }
    }
}
