/// Why bytes from a client are not valid Engine.IO v4.
public enum EngineIOError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A packet with no bytes at all (an empty frame, or two separators in a row).
    case emptyPacket
    /// The first byte is not a packet type digit `0`...`6`.
    case unknownPacketType(UInt8)
    /// `close`, `upgrade` or `noop` followed by data.
    case unexpectedData(EngineIOPacketType)
    /// A `b`-prefixed polling element whose rest is not base64.
    case invalidBase64
    /// A polling body, or a WebSocket frame, larger than `maxPayload` bytes.
    case payloadTooLarge(size: Int, limit: Int)

    public var description: String {
        switch self {
        case .emptyPacket: "empty packet"
        case .unknownPacketType(let byte): "unknown packet type byte \(byte)"
        case .unexpectedData(let type): "unexpected data after a \(type) packet"
        case .invalidBase64: "invalid base64 in a binary packet"
        case .payloadTooLarge(let size, let limit): "payload of \(size) bytes is over the limit of \(limit)"
        }
    }
}

/// The Engine.IO HTTP error answers, as the reference server sends them:
/// status 400 (413 for a body over `maxPayload`) with body `{"code":N,"message":"..."}`.
public enum EngineIOHTTPError: Int, Error, Hashable, Sendable, CaseIterable {
    case transportUnknown = 0
    case sessionIDUnknown = 1
    case badHandshakeMethod = 2
    case badRequest = 3
    case forbidden = 4
    case unsupportedProtocolVersion = 5
    /// Not in the reference's numbered list: a POST body over `maxPayload` (HTTP 413).
    case payloadTooLarge = 100

    /// The numeric code in the JSON body.
    public var code: Int { rawValue }

    /// The message in the JSON body, as the reference server words it.
    public var message: String {
        switch self {
        case .transportUnknown: "Transport unknown"
        case .sessionIDUnknown: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        case .payloadTooLarge: "Payload too large"
        }
    }

    /// The HTTP status to answer with.
    public var httpStatus: Int {
        switch self {
        case .payloadTooLarge: 413
        case .forbidden: 403
        default: 400
        }
    }

    /// The JSON body: `{"code":1,"message":"Session ID unknown"}`.
    public var body: [UInt8] {
        Array("{\"code\":\(code),\"message\":\"\(message)\"}".utf8)
    }
}
