/// The Engine.IO v4 packet types, by their wire digit.
public enum EngineIOPacketType: UInt8, Sendable, Hashable, CaseIterable {
    case open = 0
    case close = 1
    case ping = 2
    case pong = 3
    case message = 4
    case upgrade = 5
    case noop = 6

    /// The ASCII digit that starts a text packet of this type.
    public var digit: UInt8 { UInt8(ascii: "0") + rawValue }
}

/// One Engine.IO v4 packet, decoded.
///
/// Text packets are `<type digit><data>`; a binary packet is always a message, carried as a
/// WebSocket binary frame or, in a polling payload, as `b<base64>`.
public enum EngineIOPacket: Sendable, Hashable {
    /// Server → client handshake; `data` is the JSON object (see `EngineIOHandshake`).
    case open(data: [UInt8])
    case close
    /// Heartbeat from the server (`2`), or the upgrade probe from the client (`2probe`).
    case ping(data: [UInt8])
    /// Heartbeat answer from the client (`3`), or the server's probe answer (`3probe`).
    case pong(data: [UInt8])
    /// A text message: the Socket.IO packet text, without the `4`.
    case message([UInt8])
    /// A binary message (Socket.IO attachments).
    case binaryMessage([UInt8])
    case upgrade
    case noop

    /// The packet's type (`message` for binary messages too).
    public var type: EngineIOPacketType {
        switch self {
        case .open: .open
        case .close: .close
        case .ping: .ping
        case .pong: .pong
        case .message, .binaryMessage: .message
        case .upgrade: .upgrade
        case .noop: .noop
        }
    }

    /// Decodes one text packet: a type digit then its data.
    ///
    /// - Throws: `.emptyPacket`, `.unknownPacketType`, or `.unexpectedData` for `close`,
    ///   `upgrade` and `noop` with data after the digit.
    public static func decode(text bytes: some Collection<UInt8>) throws(EngineIOError) -> EngineIOPacket {
        guard let first = bytes.first else { throw .emptyPacket }
        guard first >= UInt8(ascii: "0"), let type = EngineIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownPacketType(first)
        }
        let data = bytes.dropFirst()
        switch type {
        case .open: return .open(data: Array(data))
        case .ping: return .ping(data: Array(data))
        case .pong: return .pong(data: Array(data))
        case .message: return .message(Array(data))
        case .close, .upgrade, .noop:
            guard data.isEmpty else { throw .unexpectedData(type) }
            return type == .close ? .close : type == .upgrade ? .upgrade : .noop
        }
    }

    /// Decodes a WebSocket frame: text frames are text packets, binary frames binary messages.
    public static func decode(_ frame: EngineIOFrame) throws(EngineIOError) -> EngineIOPacket {
        switch frame {
        case .text(let bytes): try decode(text: bytes)
        case .binary(let bytes): .binaryMessage(bytes)
        }
    }

    /// This packet as a frame ready to send: one WebSocket frame, or one element of a polling payload.
    public var frame: EngineIOFrame {
        switch self {
        case .binaryMessage(let bytes): return .binary(bytes)
        case .open(let data), .ping(let data), .pong(let data), .message(let data):
            var text: [UInt8] = []
            text.reserveCapacity(data.count + 1)
            text.append(type.digit)
            text.append(contentsOf: data)
            return .text(text)
        case .close, .upgrade, .noop:
            return .text([type.digit])
        }
    }
}

/// An encoded Engine.IO packet: what goes in one WebSocket frame or one polling payload element.
///
/// Encode a broadcast once and hand the same frame to every session: the bytes are shared, not copied.
public enum EngineIOFrame: Sendable, Hashable {
    /// A text packet, type digit included (`42["event",{}]` is a message carrying a Socket.IO EVENT).
    case text([UInt8])
    /// A binary message (no type byte in Engine.IO v4).
    case binary([UInt8])

    /// The frame's bytes as sent on a WebSocket.
    public var bytes: [UInt8] {
        switch self {
        case .text(let bytes), .binary(let bytes): bytes
        }
    }

    /// Frames the server sends without any state: noop, close, the probe answer.
    public static let noop = EngineIOFrame.text([EngineIOPacketType.noop.digit])
    /// `1`
    public static let close = EngineIOFrame.text([EngineIOPacketType.close.digit])
    /// `2`, the server's heartbeat.
    public static let ping = EngineIOFrame.text([EngineIOPacketType.ping.digit])
    /// `3probe`, the answer to the client's upgrade probe.
    public static let probeAnswer = EngineIOFrame.text(Array("3probe".utf8))
}

/// A message the client sent, for the Socket.IO layer.
public enum EngineIOMessage: Sendable, Hashable {
    /// A text message: the Socket.IO packet text.
    case text([UInt8])
    /// A binary message: a Socket.IO attachment.
    case binary([UInt8])
}
