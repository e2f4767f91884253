public import Broker

/// Settings of one gateway node. The defaults are SPEC's.
public struct GatewayConfiguration: Sendable {
    /// Address to bind; `127.0.0.1` by default so a demo is not exposed by accident.
    public var host: String
    /// Port to bind (SPEC §2: 3001). `0` picks a free port (tests).
    public var port: Int
    /// The job type's names on the broker.
    public var names: JobNames
    /// `Access-Control-Allow-Origin` for browsers on other origins; `nil` sends no CORS headers.
    public var corsOrigin: String?
    /// Largest accepted request body (413 above it).
    public var maxBodySize: Int
    /// Largest accepted WebSocket frame or message from a client (closed with 1009 above it).
    public var maxFrameSize: Int
    /// How often an idle SSE stream gets a comment line, so proxies and clients keep it open.
    public var heartbeatInterval: Duration
    /// Events that may wait for one slow connection before it is disconnected. It must hold a
    /// burst that arrives within one event-loop turn (a pipeline of `ws:emit`, a batch of jobs
    /// finishing), or clients that read all the time are cut off: at 256 a burst of 400 did.
    /// 1,024 events of a few hundred bytes bound a slow connection to well under a megabyte.
    public var outboundQueueCapacity: Int
    /// How often each connection's watchdog checks for a client that stopped reading.
    public var watchdogInterval: Duration
    /// How long one write to a client may stay blocked before the connection is dropped.
    public var writeStallTimeout: Duration
    /// How often each WebSocket is pinged.
    public var webSocketPingInterval: Duration
    /// How long a WebSocket client has to answer a ping before it is disconnected; `nil`, until
    /// the next ping is due.
    public var webSocketPingTimeout: Duration?
    /// How long a new connection has to send its first complete request head (HTTP, WebSocket
    /// handshake or event stream alike) before it is answered `408` and closed: a client that
    /// connects and sends nothing, or a header a byte at a time, must not hold a descriptor forever.
    public var requestHeadTimeout: Duration
    /// How long an HTTP keep-alive connection may stay idle (between requests, or while a request
    /// body stalls) before it is closed. WebSocket and SSE connections are kept by pings and
    /// heartbeats instead. Above the usual load balancers' 60 s, as nginx's 75 s is: a balancer
    /// that reuses a connection the server is closing answers its client 502.
    public var idleTimeout: Duration
    /// Hands out demo tokens at `GET /api/v1/demo-token` (only for the memory-backed demo).
    public var demoMode: Bool
    /// Most client connections open at once. Beyond it, new connections wait in the listen
    /// backlog until others close, and a warning says so: running out of file descriptors
    /// instead would stall accepting without a word and starve the broker's reconnections.
    /// `nil`: the process's open-file limit, less ``ConnectionLimit/reserve`` descriptors kept
    /// for the broker, the agent and files.
    public var maxConnections: Int?

    public init(
        host: String = "127.0.0.1",
        port: Int = 3001,
        names: JobNames = JobNames(),
        corsOrigin: String? = nil,
        maxBodySize: Int = 64 * 1024,
        maxFrameSize: Int = 64 * 1024,
        heartbeatInterval: Duration = .seconds(30),
        outboundQueueCapacity: Int = 1024,
        watchdogInterval: Duration = .seconds(1),
        writeStallTimeout: Duration = .seconds(30),
        webSocketPingInterval: Duration = .seconds(30),
        webSocketPingTimeout: Duration? = nil,
        requestHeadTimeout: Duration = .seconds(20),
        idleTimeout: Duration = .seconds(75),
        demoMode: Bool = false,
        maxConnections: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.names = names
        self.corsOrigin = corsOrigin
        self.maxBodySize = maxBodySize
        self.maxFrameSize = maxFrameSize
        self.heartbeatInterval = heartbeatInterval
        self.outboundQueueCapacity = outboundQueueCapacity
        self.watchdogInterval = watchdogInterval
        self.writeStallTimeout = writeStallTimeout
        self.webSocketPingInterval = webSocketPingInterval
        self.webSocketPingTimeout = webSocketPingTimeout
        self.requestHeadTimeout = requestHeadTimeout
        self.idleTimeout = idleTimeout
        self.demoMode = demoMode
        self.maxConnections = maxConnections
    }
}
