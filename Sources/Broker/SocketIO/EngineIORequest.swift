/// What an HTTP request to the Engine.IO path asks for, checked as the reference server's
/// `verify` does, before any session is looked up.
public enum EngineIORequest: Sendable, Hashable {
    /// A new session: answer with `EngineIOSession.openingFrame` (polling: as the GET body;
    /// WebSocket: complete the upgrade and send it as the first frame).
    case handshake(EngineIOSession.Transport)
    /// A polling GET for an existing session: `pollRequestArrived()`.
    case poll(sid: String)
    /// A polling POST for an existing session: `postArrived(body:now:)`.
    case post(sid: String)
    /// A WebSocket handshake for an existing (polling) session: `webSocketOpened(now:)`.
    case upgrade(sid: String)

    /// The HTTP methods that matter here.
    public enum Method: Sendable, Hashable {
        case get
        case post
        case other
    }

    /// Classifies a request from its method and query.
    ///
    /// - Parameters:
    ///   - eio: the `EIO` query value; only `4` is served.
    ///   - transport: the `transport` query value: `polling` or `websocket`.
    ///   - sid: the `sid` query value, if any. Whether the session exists is the caller's
    ///     check (`sessionIDUnknown` when it does not).
    ///   - isWebSocketUpgrade: whether the request asks to upgrade to WebSocket.
    /// - Throws: the error to answer with (`error.httpStatus`, `error.body`).
    public static func classify(
        method: Method, eio: String?, transport: String?, sid: String?, isWebSocketUpgrade: Bool
    ) throws(EngineIOHTTPError) -> EngineIORequest {
        let kind: EngineIOSession.Transport
        switch transport {
        case "polling": kind = .polling
        case "websocket": kind = .webSocket
        default: throw .transportUnknown
        }
        guard eio == "4" else { throw .unsupportedProtocolVersion }
        guard let sid, !sid.isEmpty else {
            guard method == .get else { throw .badHandshakeMethod }
            guard kind == .polling || isWebSocketUpgrade else { throw .badRequest }
            return .handshake(kind)
        }
        switch (kind, method) {
        case (.webSocket, .get) where isWebSocketUpgrade: return .upgrade(sid: sid)
        case (.polling, .get): return .poll(sid: sid)
        case (.polling, .post): return .post(sid: sid)
        default: throw .badRequest
        }
    }
}

extension EngineIOSession {
    /// A new random session id: 20 URL-safe base64 characters (120 bits), like the reference server's.
    public static func makeSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return makeSessionID(using: &generator)
    }

    /// A session id from `generator` (tests pass a seeded one).
    public static func makeSessionID(using generator: inout some RandomNumberGenerator) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var characters: [UInt8] = []
        characters.reserveCapacity(20)
        for _ in 0..<20 { characters.append(alphabet[Int(generator.next() & 63)]) }
        return String(decoding: characters, as: UTF8.self)
    }
}
