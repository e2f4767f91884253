/// An event a Socket.IO client emitted, parsed for the gateway (SPEC §3.1).
public enum ClientEvent: Sendable, Hashable {
    /// `join-room` with a room name: `["join-room","room:x"]` (or `{"roomId":"room:x"}`).
    /// The gateway checks the name against its room policy.
    case joinRoom(String)
    /// `leave-room` with a room name, shaped as for `joinRoom`.
    case leaveRoom(String)
    /// `chat-message` `{"roomId":"room:x","message":...}`: broadcast to the room as `chat-message`.
    case chatMessage(roomId: String, message: JSONValue)
    /// `ping`: answer with the event `pong`.
    case ping
    /// One of the events above with arguments of the wrong shape; answer with an error
    /// (an ACK if one was asked), the connection stays up.
    case malformed(name: String, reason: String)
    /// Any other event, passed through.
    case other(name: String, arguments: [JSONValue], attachments: [[UInt8]])

    /// The event names with a meaning of their own.
    public enum Name {
        /// `join-room`
        public static let joinRoom = "join-room"
        /// `leave-room`
        public static let leaveRoom = "leave-room"
        /// `chat-message`, both from the client and as broadcast to the room.
        public static let chatMessage = "chat-message"
        /// `ping` from the client.
        public static let ping = "ping"
        /// `pong`, the server's answer to `ping`.
        public static let pong = "pong"
    }

    /// Parses a decoded EVENT or BINARY_EVENT packet.
    public init(_ packet: SocketIOPacket) {
        let name = packet.eventName ?? ""
        let arguments = packet.arguments
        switch name {
        case Name.joinRoom, Name.leaveRoom:
            guard let room = Self.roomName(arguments.first) else {
                self = .malformed(name: name, reason: "expected a room name")
                return
            }
            self = name == Name.joinRoom ? .joinRoom(room) : .leaveRoom(room)
        case Name.chatMessage:
            guard let first = arguments.first, case .string(let roomId) = first["roomId"], !roomId.isEmpty,
                let message = first["message"]
            else {
                self = .malformed(name: name, reason: "expected {roomId, message}")
                return
            }
            // Chat goes to every node as JSON (the `ws:emit` channel), where binary attachments
            // cannot travel: refused, rather than broadcast as their bare placeholders.
            guard packet.attachmentCount == 0 else {
                self = .malformed(name: name, reason: "binary content is not supported; send text or JSON")
                return
            }
            self = .chatMessage(roomId: roomId, message: message)
        case Name.ping:
            self = .ping
        default:
            self = .other(name: name, arguments: arguments, attachments: packet.attachments)
        }
    }

    /// A room name given as a string, or as an object with `roomId` or `room`.
    private static func roomName(_ argument: JSONValue?) -> String? {
        let candidate: JSONValue? =
            switch argument {
            case .string: argument
            case .object: argument?["roomId"] ?? argument?["room"]
            default: nil
            }
        guard case .string(let room) = candidate, !room.isEmpty else { return nil }
        return room
    }
}
