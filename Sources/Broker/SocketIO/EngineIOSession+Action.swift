extension EngineIOSession {
    /// What the transport must do after feeding the session an input. Perform a list of actions
    /// in order. Every call about an HTTP request or WebSocket handshake (`pollRequestArrived`,
    /// `postArrived`, `webSocketOpened`) yields exactly one of `respond`, `hold`, `reject` or
    /// `acceptWebSocket` for that request.
    public enum Action: Sendable, Hashable {
        /// Answer the request this call was about with HTTP 200, `text/plain; charset=UTF-8`, this body.
        case respond([UInt8])
        /// Keep this GET open. The session later answers it with `answerHeldPoll`; if its connection
        /// drops first, call `pollConnectionLost()`.
        case hold
        /// Answer the request this call was about with `error.httpStatus` and `error.body`
        /// (for a WebSocket handshake: refuse the upgrade with that status).
        case reject(EngineIOHTTPError)
        /// Complete the WebSocket handshake of `webSocketOpened` and feed its frames to
        /// `webSocketFrameArrived`. It is a probe until `upgraded`.
        case acceptWebSocket
        /// Answer the GET held earlier (see `hold`) with HTTP 200 and this body.
        case answerHeldPoll([UInt8])
        /// Send this frame on the session's WebSocket (the probe WebSocket during an upgrade).
        case sendOnWebSocket(EngineIOFrame)
        /// A message from the client: give it to the Socket.IO layer.
        case deliver(EngineIOMessage)
        /// The probe WebSocket is now the session's transport: polling requests for this sid are
        /// refused from now on. Informational (metrics, logs).
        case upgraded
        /// The upgrade failed: close the probe WebSocket. The session goes on over polling.
        case closeProbeWebSocket
        /// The session is over: close its WebSocket if it has one, forget its sid and tell the
        /// Socket.IO layer the connection is gone. A held poll was answered by an earlier action.
        case closed(CloseReason)
    }

    /// What the transport must do with a frame given to `send(_:)`; the hot path, so no array.
    public enum SendAction: Sendable, Hashable {
        /// Send the frame on the session's WebSocket.
        case sendOnWebSocket(EngineIOFrame)
        /// Answer the held GET with this body (the frame as a polling payload).
        case answerHeldPoll([UInt8])
        /// Kept for the client's next GET: nothing to do now.
        case buffered
        /// The session is closed or closing: the frame was dropped.
        case discarded
        /// The frame did not fit the outbound buffer bounds; the session closed. Perform these actions.
        case close([Action])
    }

    /// Why a session ended.
    public enum CloseReason: Sendable, Hashable, CustomStringConvertible {
        /// The client sent a close packet.
        case clientClosed
        /// `close(now:)` was called.
        case serverClosed
        /// No pong within `pingTimeout` of a ping.
        case pingTimeout
        /// The WebSocket closed, or a held poll's connection dropped.
        case transportClosed
        /// The client sent bytes that are not Engine.IO.
        case parseError(EngineIOError)
        /// A second GET while one was held.
        case duplicatePoll
        /// A packet the client must not send here (ping in v4, open, upgrade outside an upgrade).
        case unexpectedPacket(EngineIOPacketType)
        /// A polling client fell behind by more than `maxBufferedFrames` or `maxBufferedBytes`.
        case outboundBufferFull

        public var description: String {
            switch self {
            case .clientClosed: "client closed"
            case .serverClosed: "server closed"
            case .pingTimeout: "ping timeout"
            case .transportClosed: "transport closed"
            case .parseError(let error): "parse error: \(error)"
            case .duplicatePoll: "duplicate poll"
            case .unexpectedPacket(let type): "unexpected \(type) packet"
            case .outboundBufferFull: "outbound buffer full"
            }
        }
    }
}
