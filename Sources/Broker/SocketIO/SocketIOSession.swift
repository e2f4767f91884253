/// What a client asked for in its CONNECT packet, for the gateway to authenticate.
public struct SocketIOConnectRequest: Sendable, Hashable {
    /// The namespace (always `/` here: others are refused before authentication).
    public var namespace: String
    /// The auth payload object, `nil` if the client sent none.
    public var auth: JSONValue?

    /// A request for `namespace` with the CONNECT data `auth`.
    public init(namespace: String = "/", auth: JSONValue?) {
        self.namespace = namespace
        self.auth = auth
    }

    /// `auth.token` when it is a string (may carry `Bearer `; the gateway strips it). The gateway
    /// falls back to `?token=` and the `Authorization` header when this is `nil`.
    public var token: String? { auth?["token"]?.stringValue }

    /// `auth.lastEventId`, asking for replay after that event; a number is taken as its digits.
    public var lastEventId: String? {
        switch auth?["lastEventId"] {
        case .string(let id): id
        case .integer(let id): String(id)
        default: nil
        }
    }
}

/// The Socket.IO v5 side of one connection, on top of an `EngineIOSession`: a state machine
/// with no I/O. Serves the default namespace `/`.
///
/// Feed it each `deliver`ed Engine.IO message with `receive(_:)` and perform the returned
/// action. Frames it returns go out through `EngineIOSession.send(_:)`.
public struct SocketIOSession: Sendable {
    /// Where the connection stands.
    public enum State: Sendable, Hashable {
        /// No namespace connected: only CONNECT is valid.
        case awaitingConnect
        /// CONNECT received; the gateway is checking the credentials.
        case authenticating
        /// Connected with this Socket.IO sid: events flow.
        case connected(sid: String)
        /// A protocol error or the transport ended the connection.
        case closed
    }

    /// What the gateway must do after `receive(_:)`.
    public enum Action: Sendable, Hashable {
        /// Nothing (an attachment was stored, waiting for the rest).
        case none
        /// Send this frame to the client with `EngineIOSession.send(_:)`.
        case send(EngineIOFrame)
        /// Check the credentials (token from the request, else `?token=` or `Authorization`),
        /// then call `connectAccepted(sid:)` or `connectRejected(message:)` and send the frame.
        case authenticate(SocketIOConnectRequest)
        /// The client emitted an event. If `ackID` is set, answer with
        /// `SocketIOPacket.encodeAck(id:arguments:)`.
        case event(ClientEvent, ackID: Int?)
        /// The client acknowledged an event the server emitted with an ack id.
        case acknowledgement(id: Int, arguments: [JSONValue])
        /// The client left the namespace: remove the socket from its rooms. The Engine.IO session
        /// stays open; the client may CONNECT again or close it.
        case disconnected
        /// A malformed or out-of-place packet: close the Engine.IO session (`close(now:)`),
        /// as the reference server does. Other connections are not affected.
        case close(SocketIOError)
    }

    /// Where the connection stands now.
    public private(set) var state: State = .awaitingConnect
    /// A binary packet whose attachments are still arriving, and their size so far.
    var pending: SocketIOPacket?
    var pendingBytes = 0
    /// The most bytes of attachments one binary packet may carry, all together.
    public let maximumAttachmentBytes: Int
    /// When a client that never connects a namespace is dropped (the reference server's `connectTimeout`).
    public private(set) var connectDeadline: ContinuousClock.Instant?

    /// A connection waiting for CONNECT. With a `connectDeadline` (the reference server uses
    /// 45 s after the Engine.IO handshake), call `timerFired(now:)` at that time.
    /// `maximumAttachmentBytes` bounds what a client can make the server hold for one binary
    /// packet (each attachment is already bounded by the Engine.IO `maxPayload`).
    public init(connectDeadline: ContinuousClock.Instant? = nil, maximumAttachmentBytes: Int = 1_000_000) {
        self.connectDeadline = connectDeadline
        self.maximumAttachmentBytes = maximumAttachmentBytes
    }

    /// Call at or after `connectDeadline`: `.close(.connectTimeout)` if no namespace was ever
    /// connected, else `.none`.
    public mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        guard let connectDeadline, now >= connectDeadline else { return .none }
        self.connectDeadline = nil
        switch state {
        case .awaitingConnect, .authenticating: return fail(.connectTimeout)
        case .connected, .closed: return .none
        }
    }

    /// Whether events may be sent to this client.
    public var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// An Engine.IO message from the client.
    public mutating func receive(_ message: EngineIOMessage) -> Action {
        if case .closed = state { return .none }
        switch message {
        case .text(let text):
            guard pending == nil else { return fail(.unexpectedTextMessage) }
            let packet: SocketIOPacket
            do {
                packet = try SocketIOPacket.decode(text)
            } catch {
                return fail(error)
            }
            if packet.type.isBinary, packet.attachmentCount > 0 {
                pending = packet
                pendingBytes = 0
                return .none
            }
            return dispatch(packet)
        case .binary(let bytes):
            guard var packet = pending else { return fail(.unexpectedBinaryMessage) }
            pendingBytes += bytes.count
            guard pendingBytes <= maximumAttachmentBytes else { return fail(.attachmentsTooLarge) }
            packet.attachments.append(bytes)
            guard packet.attachments.count == packet.attachmentCount else {
                pending = packet
                return .none
            }
            pending = nil
            pendingBytes = 0
            return dispatch(packet)
        }
    }

    /// The gateway accepted the CONNECT: the frame `40{"sid":"..."}` to send, or `nil` if the
    /// connection is no longer waiting for an answer (it closed meanwhile).
    public mutating func connectAccepted(sid: String) -> EngineIOFrame? {
        guard case .authenticating = state else { return nil }
        state = .connected(sid: sid)
        connectDeadline = nil
        let packet = SocketIOPacket(type: .connect, data: ["sid": .string(sid)])
        return packet.frames[0]
    }

    /// The gateway refused the CONNECT: the frame `44{"message":"..."}` to send, or `nil` if the
    /// connection is no longer waiting. The client may try CONNECT again.
    public mutating func connectRejected(message: String) -> EngineIOFrame? {
        guard case .authenticating = state else { return nil }
        state = .awaitingConnect
        return SocketIOPacket(type: .connectError, data: ["message": .string(message)]).frames[0]
    }

    /// The server ends the namespace connection: the frame `41` to send (then close the
    /// Engine.IO session if nothing else runs on it), or `nil` if not connected.
    public mutating func disconnect() -> EngineIOFrame? {
        guard isConnected else { return nil }
        state = .awaitingConnect
        return SocketIOPacket(type: .disconnect).frames[0]
    }

    /// The Engine.IO session closed: no more packets either way.
    public mutating func transportClosed() {
        state = .closed
        pending = nil
    }

    private mutating func fail(_ error: SocketIOError) -> Action {
        state = .closed
        pending = nil
        return .close(error)
    }

    private mutating func dispatch(_ packet: SocketIOPacket) -> Action {
        guard packet.namespace == "/" else {
            // Only the default namespace exists: a CONNECT elsewhere is refused politely.
            guard packet.type == .connect else { return fail(.invalidState(packet.type)) }
            let refusal = SocketIOPacket(
                type: .connectError, namespace: packet.namespace, data: ["message": "Invalid namespace"])
            return .send(refusal.frames[0])
        }
        switch (state, packet.type) {
        case (.awaitingConnect, .connect):
            state = .authenticating
            return .authenticate(SocketIOConnectRequest(namespace: packet.namespace, auth: packet.data))
        case (.connected, .event), (.connected, .binaryEvent):
            return .event(ClientEvent(packet), ackID: packet.ackID)
        case (.connected, .ack), (.connected, .binaryAck):
            return .acknowledgement(id: packet.ackID ?? 0, arguments: packet.arguments)
        case (.connected, .disconnect):
            state = .awaitingConnect
            return .disconnected
        default:
            return fail(.invalidState(packet.type))
        }
    }
}
