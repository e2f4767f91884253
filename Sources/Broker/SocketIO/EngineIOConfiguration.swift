/// Engine.IO server settings, shared by every session of a gateway.
public struct EngineIOConfiguration: Sendable, Hashable {
    /// How long after the last heartbeat the server sends a ping (`2`). Default 25 s.
    public var pingInterval: Duration
    /// How long the client has to answer a ping with a pong (`3`) before the session closes. Default 20 s.
    public var pingTimeout: Duration
    /// Largest polling body or WebSocket frame accepted from a client, in bytes. Default 1 000 000,
    /// the reference server's.
    public var maxPayload: Int
    /// How long a probe WebSocket may take to send `5` after opening before it is dropped. Default 10 s.
    public var upgradeTimeout: Duration
    /// Most frames held for a polling client between its GETs; one more closes the session.
    public var maxBufferedFrames: Int
    /// Most bytes held for a polling client between its GETs; more closes the session.
    public var maxBufferedBytes: Int
    /// Most packets in one polling answer; the rest go with the next GET. python-engineio
    /// (python-socketio's transport) refuses a payload of more than 16 packets and drops the
    /// connection ("Too many packets in payload"), so a burst must not be answered in one.
    public var maxPacketsPerPoll: Int

    /// Settings with the reference server's defaults, SPEC §3.1 for the heartbeat.
    public init(
        pingInterval: Duration = .seconds(25),
        pingTimeout: Duration = .seconds(20),
        maxPayload: Int = 1_000_000,
        upgradeTimeout: Duration = .seconds(10),
        maxBufferedFrames: Int = 1024,
        maxBufferedBytes: Int = 4 << 20,
        maxPacketsPerPoll: Int = 16
    ) {
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
        self.upgradeTimeout = upgradeTimeout
        self.maxBufferedFrames = maxBufferedFrames
        self.maxBufferedBytes = maxBufferedBytes
        self.maxPacketsPerPoll = max(2, maxPacketsPerPoll)
    }
}

/// The Engine.IO v4 open packet's content.
public struct EngineIOHandshake: Sendable, Hashable {
    /// The session id, echoed by the client as `?sid=`.
    public var sid: String
    /// `["websocket"]` for a polling session, `[]` for a session opened on a WebSocket.
    public var upgrades: [String]
    /// Milliseconds.
    public var pingInterval: Int64
    /// Milliseconds.
    public var pingTimeout: Int64
    /// Bytes.
    public var maxPayload: Int

    /// The handshake for `sid` with the timings and limit of `configuration`.
    public init(sid: String, upgrades: [String], configuration: EngineIOConfiguration) {
        self.sid = sid
        self.upgrades = upgrades
        self.pingInterval = configuration.pingInterval.milliseconds
        self.pingTimeout = configuration.pingTimeout.milliseconds
        self.maxPayload = configuration.maxPayload
    }

    /// The open packet, with the keys in the reference server's order:
    /// `0{"sid":"...","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`.
    public var frame: EngineIOFrame {
        var text: [UInt8] = [EngineIOPacketType.open.digit]
        text.append(contentsOf: #"{"sid":"#.utf8)
        JSONValue.writeString(sid, into: &text)
        text.append(contentsOf: #","upgrades":["#.utf8)
        for (index, upgrade) in upgrades.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            JSONValue.writeString(upgrade, into: &text)
        }
        text.append(contentsOf: "],\"pingInterval\":\(pingInterval),\"pingTimeout\":\(pingTimeout)".utf8)
        text.append(contentsOf: ",\"maxPayload\":\(maxPayload)}".utf8)
        return .text(text)
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
