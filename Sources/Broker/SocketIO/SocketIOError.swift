/// Why an Engine.IO message is not a valid Socket.IO v5 packet, or not valid at this point of
/// the session, or why the connection is dropped. Each closes the connection, as the reference server does ("parse error",
/// "invalid state"); other sessions are untouched.
public enum SocketIOError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An empty text message.
    case emptyPacket
    /// The first byte is not a packet type digit `0`...`6`.
    case unknownPacketType(UInt8)
    /// A binary packet whose `<count>-` prefix is missing or not a number.
    case invalidAttachmentCount
    /// A binary packet announcing more attachments than `SocketIOPacket.maximumAttachments`.
    case tooManyAttachments(Int)
    /// A namespace that is not valid UTF-8.
    case invalidNamespace
    /// An ack id over 2^53 - 1 (JavaScript's largest exact integer).
    case ackIDOverflow
    /// An ACK without an ack id.
    case missingAckID
    /// An ack id on a packet type that takes none (CONNECT, DISCONNECT, CONNECT_ERROR).
    case unexpectedAckID(SocketIOPacketType)
    /// The data is not JSON.
    case invalidJSON(JSONSyntaxError)
    /// The data is JSON but not what the packet type requires (an object or nothing for CONNECT,
    /// nothing for DISCONNECT, a non-empty array starting with the event name for EVENT, an array
    /// for ACK, an object or string for CONNECT_ERROR).
    case invalidPayload(SocketIOPacketType)
    /// An EVENT named as one of Socket.IO's own events (`connect`, `disconnect`, ...).
    case reservedEventName(String)
    /// The placeholders of a binary packet are not exactly `0..<count` once each (a placeholder
    /// refers to an attachment that does not exist, is repeated, or an announced one is never used).
    case attachmentMismatch
    /// The attachments of one binary packet add up to more than the session allows.
    case attachmentsTooLarge
    /// A text packet arrived while attachments of a binary packet were expected.
    case unexpectedTextMessage
    /// A binary message arrived with no binary packet waiting for attachments.
    case unexpectedBinaryMessage
    /// A packet other than CONNECT before the namespace is connected, a CONNECT while connected
    /// or being authenticated, or a packet the server alone sends (CONNECT_ERROR).
    case invalidState(SocketIOPacketType)
    /// No namespace was connected before the connect deadline.
    case connectTimeout

    public var description: String {
        switch self {
        case .emptyPacket: "empty packet"
        case .unknownPacketType(let byte): "unknown packet type byte \(byte)"
        case .invalidAttachmentCount: "invalid attachment count"
        case .tooManyAttachments(let count): "too many attachments (\(count))"
        case .invalidNamespace: "invalid namespace"
        case .ackIDOverflow: "ack id too large"
        case .missingAckID: "ACK without an ack id"
        case .unexpectedAckID(let type): "ack id on a \(type) packet"
        case .invalidJSON(let error): "\(error)"
        case .invalidPayload(let type): "invalid payload for a \(type) packet"
        case .reservedEventName(let name): "reserved event name \"\(name)\""
        case .attachmentMismatch: "attachments do not match the placeholders"
        case .attachmentsTooLarge: "attachments too large"
        case .unexpectedTextMessage: "text message while waiting for attachments"
        case .unexpectedBinaryMessage: "binary message without a binary packet"
        case .invalidState(let type): "\(type) packet not valid in this state"
        case .connectTimeout: "no CONNECT before the deadline"
        }
    }
}
