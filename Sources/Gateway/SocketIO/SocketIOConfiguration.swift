public import Broker

/// Settings of the Socket.IO transport at `/socket.io/` (SPEC §3.1), beside the gateway's own.
public struct SocketIOConfiguration: Sendable {
    /// Heartbeat (25 s ping interval, 20 s timeout by default), payload limit, polling buffer bounds.
    public var engine: EngineIOConfiguration
    /// How long a client may stay without connecting the namespace after the Engine.IO
    /// handshake (the reference server's `connectTimeout`, 45 s).
    public var connectTimeout: Duration
    /// How often the session table is swept for heartbeats and timeouts due. Timers are
    /// exact to this resolution.
    public var sweepInterval: Duration
    /// Events handed to one connection's wire (WebSocket writer or polling buffer) and not yet
    /// taken by the client; beyond it the connection's session buffer (the gateway's
    /// `outboundQueueCapacity`) fills, and then the connection is closed as a slow consumer.
    public var maxInFlightFrames: Int

    /// The defaults: SPEC's heartbeat; `maxPayload` is the gateway's WebSocket frame limit
    /// (64 KiB), so what polling accepts the WebSocket does too.
    public init(
        pingInterval: Duration = .seconds(25),
        pingTimeout: Duration = .seconds(20),
        maxPayload: Int = 64 * 1024,
        connectTimeout: Duration = .seconds(45),
        sweepInterval: Duration = .milliseconds(250),
        maxInFlightFrames: Int = 64
    ) {
        self.engine = EngineIOConfiguration(
            pingInterval: pingInterval, pingTimeout: pingTimeout, maxPayload: maxPayload)
        self.connectTimeout = connectTimeout
        self.sweepInterval = sweepInterval
        self.maxInFlightFrames = maxInFlightFrames
    }
}
