/// The Socket.IO v5 packet types, by their wire digit.
public enum SocketIOPacketType: UInt8, Sendable, Hashable, CaseIterable {
    case connect = 0
    case disconnect = 1
    case event = 2
    case ack = 3
    case connectError = 4
    case binaryEvent = 5
    case binaryAck = 6

    /// The ASCII digit that starts a packet of this type.
    public var digit: UInt8 { UInt8(ascii: "0") + rawValue }

    /// Whether packets of this type announce binary attachments (`<count>-`).
    public var isBinary: Bool { self == .binaryEvent || self == .binaryAck }
}

/// One Socket.IO v5 packet: `<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]`,
/// carried in an Engine.IO message (so `42["hello"]` on the wire is message `4` + EVENT `2["hello"]`).
///
/// Binary attachments travel as the Engine.IO binary messages that follow the text packet;
/// in the data each is a placeholder `{"_placeholder":true,"num":N}`.
public struct SocketIOPacket: Sendable, Hashable {
    /// The most attachments a client may announce for one packet.
    public static let maximumAttachments = 64
    /// The largest ack id (JavaScript's `Number.MAX_SAFE_INTEGER`).
    public static let maximumAckID = 9_007_199_254_740_991
    /// Event names Socket.IO keeps for itself; a client may not emit them.
    public static let reservedEventNames: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]

    /// The packet type.
    public var type: SocketIOPacketType
    /// The namespace; `/` is the default and is not written on the wire.
    public var namespace: String
    /// The ack id: on an EVENT, the client wants an ACK with this id; on an ACK, the event it answers.
    public var ackID: Int?
    /// The JSON data, `nil` when absent.
    public var data: JSONValue?
    /// For BINARY_EVENT and BINARY_ACK: how many attachments the packet announced.
    public var attachmentCount: Int
    /// The attachments, in placeholder order, once reassembled (see `SocketIOSession`).
    public var attachments: [[UInt8]]

    /// A packet; `attachmentCount` is taken from `attachments`.
    public init(
        type: SocketIOPacketType, namespace: String = "/", ackID: Int? = nil, data: JSONValue? = nil,
        attachments: [[UInt8]] = []
    ) {
        self.type = type
        self.namespace = namespace
        self.ackID = ackID
        self.data = data
        self.attachmentCount = attachments.count
        self.attachments = attachments
    }

    /// For EVENT and BINARY_EVENT: the event name, the first element of the data.
    public var eventName: String? {
        guard type == .event || type == .binaryEvent, case .array(let elements) = data else { return nil }
        return elements.first?.stringValue
    }

    /// For EVENT and BINARY_EVENT, the elements after the name; for ACK and BINARY_ACK, all of them.
    public var arguments: [JSONValue] {
        guard case .array(let elements) = data else { return [] }
        return type == .event || type == .binaryEvent ? Array(elements.dropFirst()) : elements
    }

    /// The attachment a placeholder value stands for, or `nil` if `value` is not a valid placeholder.
    public func attachment(for value: JSONValue) -> [UInt8]? {
        guard let index = Self.placeholderIndex(value), index < attachments.count else { return nil }
        return attachments[index]
    }

    /// The placeholder JSON for attachment `index`: `{"_placeholder":true,"num":index}`.
    public static func placeholder(_ index: Int) -> JSONValue {
        ["_placeholder": true, "num": .integer(Int64(index))]
    }

    /// The `num` of a placeholder object, or `nil` if `value` is not shaped as one.
    public static func placeholderIndex(_ value: JSONValue) -> Int? {
        guard case .object(let members) = value, members["_placeholder"] == .bool(true),
            case .integer(let num) = members["num"], num >= 0, num <= Int64(Int32.max)
        else { return nil }
        return Int(num)
    }

    /// This packet's text, without the Engine.IO `4`.
    public var encoded: [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(32)
        append(to: &text)
        return text
    }

    /// The frames that carry this packet: a text message, then one binary message per attachment.
    public var frames: [EngineIOFrame] {
        var text: [UInt8] = [EngineIOPacketType.message.digit]
        append(to: &text)
        return [.text(text)] + attachments.map { .binary($0) }
    }

    func append(to text: inout [UInt8]) {
        text.append(type.digit)
        if type.isBinary {
            text.append(contentsOf: String(attachmentCount).utf8)
            text.append(UInt8(ascii: "-"))
        }
        if namespace != "/" {
            text.append(contentsOf: namespace.utf8)
            text.append(UInt8(ascii: ","))
        }
        if let ackID { text.append(contentsOf: String(ackID).utf8) }
        data?.write(into: &text)
    }
}

extension SocketIOPacket {
    /// An EVENT on the default namespace as a complete Engine.IO text frame, `42["name",data]`.
    ///
    /// Encode a broadcast once and send the same bytes to every socket (`EngineIOFrame.text`).
    public static func encodeEvent(name: String, data: JSONValue) -> [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(name.utf8.count + 64)
        appendEventPrefix(name: name, to: &text)
        text.append(UInt8(ascii: ","))
        data.write(into: &text)
        text.append(UInt8(ascii: "]"))
        return text
    }

    /// Like `encodeEvent(name:data:)` with data that is already JSON (as it came from the broker),
    /// spliced in without parsing. The caller guarantees `json` is one valid JSON value.
    public static func encodeEvent(name: String, json: [UInt8]) -> [UInt8] {
        json.withUnsafeBufferPointer { encodeEvent(name: name, jsonBuffer: $0) }
    }

    /// Like `encodeEvent(name:json:)` with the JSON as a string (e.g. a routed event's `dataJSON`).
    public static func encodeEvent(name: String, json: String) -> [UInt8] {
        var json = json
        return json.withUTF8 { encodeEvent(name: name, jsonBuffer: $0) }
    }

    // Not generic on purpose: a public generic is called unspecialized from other modules,
    // byte by byte, which costs more than the whole rest of the encoding.
    static func encodeEvent(name: String, jsonBuffer json: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(name.utf8.count + json.count + 8)
        appendEventPrefix(name: name, to: &text)
        text.append(UInt8(ascii: ","))
        text.append(contentsOf: json)
        text.append(UInt8(ascii: "]"))
        return text
    }

    /// An EVENT with any number of arguments, `42["name",arg1,...]`, as a complete Engine.IO text frame.
    public static func encodeEvent(name: String, arguments: [JSONValue]) -> [UInt8] {
        var text: [UInt8] = []
        appendEventPrefix(name: name, to: &text)
        for argument in arguments {
            text.append(UInt8(ascii: ","))
            argument.write(into: &text)
        }
        text.append(UInt8(ascii: "]"))
        return text
    }

    /// An ACK on the default namespace, `43<id>[args...]`, as a complete Engine.IO text frame.
    public static func encodeAck(id: Int, arguments: [JSONValue]) -> [UInt8] {
        SocketIOPacket(type: .ack, ackID: id, data: .array(arguments)).frames[0].bytes
    }

    private static func appendEventPrefix(name: String, to text: inout [UInt8]) {
        text.append(EngineIOPacketType.message.digit)
        text.append(SocketIOPacketType.event.digit)
        text.append(UInt8(ascii: "["))
        JSONValue.writeString(name, into: &text)
    }
}
