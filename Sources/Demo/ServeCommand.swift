import ArgumentParser
import Broker
import Foundation
import Gateway
import Logging
import MemoryBackend
import Metrics
import Prometheus
import RedisBackend
import ServiceLifecycle
import UnixSignals

/// `switchboard serve`: the gateway (SPEC §5). With no Redis it runs on the embedded memory
/// backend with the demo agent in process, so one command gives a working system.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Start the gateway: HTTP API, WebSocket, Server-Sent Events and the live page.",
        discussion: """
            Without --redis (or env REDIS_URL / UPSTASH_REDIS_URL) it runs on the embedded memory backend \
            with the demo agent in process, and prints a ready-to-use demo token. With Redis the in-process \
            agent is off unless --agent is given, and a JWT secret is required. SIGTERM or SIGINT stops \
            accepting, closes connections and drains the in-process agent.
            """
    )

    @Option(help: "Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS, unix:///path/redis.sock for a local socket (default: env REDIS_URL or UPSTASH_REDIS_URL).")
    var redis: String?

    @Option(parsing: .unconditional, help: "Port to listen on (default: env PORT or 3001; 0 picks a free one).")
    var port: Int?

    @Option(help: "Address to bind (default: env HOST or 127.0.0.1).")
    var host: String?

    @Option(help: "HS256 secret, at least 32 bytes (default: env JWT_SECRET; generated for the memory demo).")
    var jwtSecret: String?

    @Option(help: "Origin allowed by CORS, or * (default: env CORS_ORIGIN; none).")
    var corsOrigin: String?

    @OptionGroup var redisOptions: RedisOptions

    @Flag(help: "Run the demo agent in process also when using Redis.")
    var agent = false

    @Option(parsing: .unconditional, help: "Seconds between SSE heartbeats.")
    var heartbeat = 30.0

    @Option(parsing: .unconditional, help: "Seconds between the server's Socket.IO pings (Engine.IO pingInterval).")
    var pingInterval = 25.0

    @Option(parsing: .unconditional, help: "Seconds a Socket.IO client has to answer a ping before it is disconnected (pingTimeout).")
    var pingTimeout = 20.0

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Seconds an HTTP keep-alive connection may stay idle before it is closed.",
        discussion: "Behind a load balancer, keep it above the balancer's own idle timeout (AWS ALB: 60 s), or the balancer may reuse a connection just as it closes."))
    var idleTimeout = 75.0

    @Option(parsing: .unconditional, help: "Seconds a new connection has to send its first complete request head (then 408).")
    var requestHeadTimeout = 20.0

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Seconds graceful shutdown may take before what is left is cancelled.",
        discussion: "Requests still in progress, connections and in-process jobs then end at once (jobs go back on the queue). The default stays under Kubernetes' 30 s grace period."))
    var shutdownTimeout = 25.0

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Events that may wait for one connection before it is disconnected as too slow.",
        discussion: "It must hold a burst that arrives at once (a pipeline of ws:emit, a batch of jobs finishing), or clients that keep reading are cut off."))
    var outboundCapacity = 1024

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Most client connections open at once; beyond, new ones wait until others close (default: the open-file limit less 128).",
        discussion: "serve raises its soft open-file limit to the hard one at start; the log says what both limits came to."))
    var maxConnections: Int?

    @Option(help: "The key prefix.")
    var prefix = "agent"

    @Option(help: "The job type.")
    var type = "rebalance"

    @Option(parsing: .unconditional, help: "Status updates applied in parallel (each lane batches what queued while it was busy).")
    var statusLanes = RouterConfiguration().statusLanes

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: env LOG_LEVEL or info).")
    var logLevel: String?

    func validate() throws {
        if let port, !(0...65_535).contains(port) { throw ValidationError("--port must be 0-65535") }
        for (flag, seconds) in [
            ("--heartbeat", heartbeat), ("--ping-interval", pingInterval), ("--ping-timeout", pingTimeout),
            ("--idle-timeout", idleTimeout), ("--request-head-timeout", requestHeadTimeout), ("--shutdown-timeout", shutdownTimeout),
        ] {
            try FlagRange.check(seconds: seconds, flag: flag)
        }
        guard outboundCapacity >= 1 else { throw ValidationError("--outbound-capacity must be at least 1") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        guard statusLanes >= 1 else { throw ValidationError("--status-lanes must be at least 1") }
        _ = try LogLevelSetting.level(flag: logLevel)
        guard !prefix.isEmpty, !type.isEmpty else { throw ValidationError("--prefix and --type must not be empty") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        MallocTuning.limitArenas(environment: environment)
        let openFiles = OpenFileLimit.raise()
        let level = try LogLevelSetting.level(flag: logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "switchboard")
        let settings = try ServeSettings(command: self, environment: environment)

        // Every metric of the process (router, backends, gateway) lands in one registry that
        // /metrics renders.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let authority: TokenAuthority
        do {
            authority = try await TokenAuthority(secret: settings.secret)
        } catch let error as TokenAuthority.WeakSecretError {
            throw StartupError(error.description)
        }

        let broker: any Broker
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var reconnects: (@Sendable () -> Int)?
        if let url = settings.redisURL {
            let redis = try redisOptions.broker(url: url, logger: Logger(label: "switchboard.redis"))
            broker = redis
            reconnects = { redis.reconnectCount }
            services += [.init(service: redis), RedisStartupCheck(broker: redis, url: url).groupMember]
        } else {
            let memory = MemoryBroker()
            broker = memory
            services.append(.init(service: memory))
        }

        let names = JobNames(prefix: prefix, type: type)
        let router = JobRouter(
            broker: broker, configuration: RouterConfiguration(jobTypes: [names], statusLanes: statusLanes),
            registry: SessionRegistry(outboundCapacity: outboundCapacity), logger: Logger(label: "switchboard.router"))
        let configuration = GatewayConfiguration(
            host: settings.host, port: settings.port, names: names, corsOrigin: settings.corsOrigin,
            heartbeatInterval: DurationText.seconds(heartbeat), outboundQueueCapacity: outboundCapacity,
            requestHeadTimeout: DurationText.seconds(requestHeadTimeout),
            idleTimeout: DurationText.seconds(idleTimeout), demoMode: settings.handsOutDemoTokens,
            maxConnections: maxConnections)
        let demoUser = settings.isMemoryDemo ? "demo-user" : nil
        let announce = Announcement(settings: settings, authority: authority, demoUser: demoUser)
        let gateway = Gateway(
            configuration: configuration, router: router, authority: authority,
            metrics: GatewayMetrics(registry: registry, backendReconnects: reconnects),
            logger: Logger(label: "switchboard.gateway"), demoUser: demoUser,
            onServerRunning: { port in await announce.print(port: port) })
        logger.info(
            "connection limit", metadata: ["maxConnections": "\(gateway.connectionLimit)", "openFileLimit": "\(openFiles.map(String.init) ?? "unknown")"])
        // Shut down in reverse order: the agent drains first, then the gateway closes its
        // connections, then the router and the backend stop.
        // Socket.IO at /socket.io/, shut down before the server.
        let socketIO = SocketIOTransport(
            gateway: gateway,
            configuration: SocketIOConfiguration(
                pingInterval: DurationText.seconds(pingInterval), pingTimeout: DurationText.seconds(pingTimeout)))
        let gatewayServices: [any Service] = [router, gateway.addingSocketIO(socketIO), socketIO]
        services += gatewayServices.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        if settings.runsAgent {
            services.append(
                .init(
                    service: Agent(
                        broker: broker, handler: DemoRebalanceHandler(), configuration: AgentConfiguration(names: names),
                        logger: Logger(label: "switchboard.agent"))))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        // What graceful shutdown has not finished by then (a request whose body stopped coming,
        // a long demo job) is cancelled: the process exits before an orchestrator's SIGKILL.
        groupConfiguration.maximumGracefulShutdownDuration = DurationText.seconds(shutdownTimeout)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// A setting that makes starting impossible; printed as `Error: <message>` (exit status 1).
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// What `error` says, without a type name in front (a broker error's message alone).
    static func message(of error: any Error) -> String {
        (error as? BrokerError)?.message ?? (error as? ValidationError)?.message ?? "\(error)"
    }
}

/// The command's options merged with the environment, checked.
struct ServeSettings {
    var redisURL: String?
    var host: String
    var port: Int
    var secret: String
    var corsOrigin: String?
    var runsAgent: Bool
    var generatedSecret: Bool

    var isMemoryDemo: Bool { redisURL == nil }
    /// Whether the live page may fetch a token (`/api/v1/demo-token`): only in the memory demo
    /// with a secret of its own making. Signed with a secret the operator gave (perhaps
    /// production's, from the environment), a token from an open endpoint would be a key to
    /// every deployment sharing that secret.
    var handsOutDemoTokens: Bool { isMemoryDemo && generatedSecret }

    init(command: ServeCommand, environment: [String: String]) throws {
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        redisURL = RedisOptions.url(given: command.redis, environment: environment)
        host = nonEmpty(command.host) ?? nonEmpty(environment["HOST"]) ?? "127.0.0.1"
        if let port = command.port {
            self.port = port
        } else if let text = nonEmpty(environment["PORT"]) {
            guard let port = Int(text), (0...65_535).contains(port) else { throw StartupError("PORT=\(text) is not a port") }
            self.port = port
        } else {
            port = 3001
        }
        corsOrigin = nonEmpty(command.corsOrigin) ?? nonEmpty(environment["CORS_ORIGIN"])
        if let corsOrigin, !Self.isOrigin(corsOrigin) {
            // A browser compares the Origin header byte for byte: `example.com` or a trailing
            // slash would never match, and cross-origin requests would fail without a word here.
            throw StartupError(
                "CORS origin '\(corsOrigin)' is not an origin: give * or scheme://host[:port] without a path, "
                    + "e.g. https://app.example.com")
        }
        runsAgent = redisURL == nil || command.agent
        if let secret = nonEmpty(command.jwtSecret) ?? nonEmpty(environment["JWT_SECRET"]) {
            self.secret = secret
            generatedSecret = false
        } else if redisURL == nil {
            // The memory demo is self-contained: a fresh secret per run, announced with a token.
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
            secret = String((0..<48).map { _ in alphabet.randomElement()! })
            generatedSecret = true
        } else {
            throw StartupError("a JWT secret is required with Redis: --jwt-secret or env JWT_SECRET (32+ bytes)")
        }
    }
}

extension ServeSettings {
    /// Whether `text` is `*` or a serialized origin (RFC 6454 §6.2): `scheme://host[:port]`.
    static func isOrigin(_ text: String) -> Bool {
        if text == "*" { return true }
        guard let components = URLComponents(string: text), let scheme = components.scheme, !scheme.isEmpty,
            let host = components.host, !host.isEmpty, components.path.isEmpty, components.query == nil,
            components.fragment == nil, components.user == nil, text.hasPrefix("\(scheme)://")
        else { return false }
        return true
    }
}

/// What `serve` prints once it listens: where, on what, and in the demo a token to use.
struct Announcement: Sendable {
    let settings: ServeSettings
    let authority: TokenAuthority
    let demoUser: String?

    func print(port: Int) async {
        let shownHost = settings.host == "0.0.0.0" || settings.host == "::" ? "127.0.0.1" : settings.host
        let url = "http://\(shownHost):\(port)"
        var lines = ["Switchboard gateway listening on \(url)"]
        if let redisURL = settings.redisURL {
            lines.append("backend: redis (\(RedisConfiguration.redacted(redisURL)))" + (settings.runsAgent ? ", demo agent in process" : ""))
            // No token is printed with a production secret; say where one comes from, and that
            // jobs wait in the queue until an agent takes them.
            lines.append("tokens: switchboard token --user <id> (signed with the same JWT_SECRET)")
            if !settings.runsAgent {
                lines.append("no agent in this process: run switchboard agent --redis <url>, or serve with --agent")
            }
        } else {
            lines.append("backend: memory, demo agent in process")
        }
        if let demoUser, let token = try? await authority.issue(userId: demoUser, lifetime: .seconds(86_400)) {
            lines.append("demo user: \(demoUser)")
            lines.append("demo token: \(token)")
            lines.append("open \(url)/ in a browser, or:")
            lines.append(
                "  curl -X POST \(url)/api/v1/agent/rebalance -H 'Authorization: Bearer \(token)' "
                    + "-H 'Content-Type: application/json' -d '{\"amount\":1000}'")
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
