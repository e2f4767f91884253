/// An event on its way to sessions: a name (`rebalance:processing`, `notification`,
/// `chat-message`), the room it is for (`user:<id>`, `room:<name>`), JSON data, and for
/// events in a user's durable sequence an ``EventID``.
///
/// The same value travels on `ws:emit` between nodes, is stored in the user's event log
/// `ws:pending:user:<userId>`, and is handed to transports by ``Session``. Its wire form is
/// the SPEC §3.4 emit message, with `eventId` and `timestamp` added:
/// `{"userId":"…","event":"rebalance:done","data":{…,"eventId":"17"},"eventId":"17","timestamp":"…"}`
/// (`"room":"room:x"` instead of `userId` for rooms).
public struct RoutedEvent: Sendable, Hashable {
    /// The event name transports show (`type` on `/ws`, `event:` on SSE, the Socket.IO event).
    public var name: String
    /// The room whose sessions receive it.
    public var room: String
    /// The event's data. For job events: the status update plus `eventId`.
    public var data: JSONValue
    /// The position in the user's sequence, for events that are logged and replayable.
    public var eventId: EventID?
    /// When the event was routed.
    public var timestamp: Timestamp
    /// `data` as compact JSON, serialized once for all sessions and transports.
    public let dataJSON: String

    public init(name: String, room: String, data: JSONValue, eventId: EventID? = nil, timestamp: Timestamp = .now()) {
        self.name = name
        self.room = room
        self.data = data
        self.eventId = eventId
        self.timestamp = timestamp
        self.dataJSON = data.jsonText
    }

    /// The user whose room this event is for, or `nil` for other rooms.
    public var userId: String? {
        room.hasPrefix(Self.userRoomPrefix) ? String(room.dropFirst(Self.userRoomPrefix.count)) : nil
    }

    static let userRoomPrefix = "user:"
}

/// Why a message on `ws:emit` (or an entry of an event log) was refused.
public struct EmitMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "invalid emit message: \(message)" }
}

extension RoutedEvent {
    /// Parses an emit message: `{"userId"|"room", "event", "data"?, "eventId"?, "timestamp"?}`.
    /// `userId` wins over `room` when both are present (the user's room is then the target).
    public init(emitMessage bytes: [UInt8]) throws(EmitMessageError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw EmitMessageError("not JSON")
        }
        guard case .object(let members) = value else { throw EmitMessageError("not a JSON object") }
        guard let name = members["event"]?.stringValue, !name.isEmpty else {
            throw EmitMessageError("missing \"event\" (a non-empty string)")
        }
        let room: String
        if let userId = members["userId"]?.stringValue, !userId.isEmpty {
            room = JobNames.userRoom(userId)
        } else if let target = members["room"]?.stringValue, !target.isEmpty {
            room = target
        } else {
            throw EmitMessageError("missing \"userId\" or \"room\" (a non-empty string)")
        }
        var eventId: EventID?
        if let id = members["eventId"] {
            switch id {
            case .string(let text): eventId = EventID(text)
            case .integer(let number): eventId = EventID(number)
            default: eventId = nil
            }
            guard eventId != nil else { throw EmitMessageError("\"eventId\" is not a decimal id") }
        }
        let timestamp = members["timestamp"]?.stringValue.flatMap { Timestamp(iso8601: $0) } ?? .now()
        self.init(name: name, room: room, data: members["data"] ?? .object([:]), eventId: eventId, timestamp: timestamp)
    }

    /// The emit-message JSON this event travels and is logged as (keys sorted, `data`
    /// spliced in from ``dataJSON`` rather than serialized again).
    public var emitMessage: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(dataJSON.utf8.count + name.utf8.count + room.utf8.count + 80)
        out.append(contentsOf: #"{"data":"#.utf8)
        out.append(contentsOf: dataJSON.utf8)
        out.append(contentsOf: #","event":"#.utf8)
        JSONValue.writeString(name, into: &out)
        if let eventId {
            out.append(contentsOf: #","eventId":""#.utf8)
            out.append(contentsOf: eventId.description.utf8)
            out.append(UInt8(ascii: "\""))
        }
        if userId == nil {
            out.append(contentsOf: #","room":"#.utf8)
            JSONValue.writeString(room, into: &out)
        }
        out.append(contentsOf: #","timestamp":""#.utf8)
        out.append(contentsOf: timestamp.iso8601.utf8)
        out.append(UInt8(ascii: "\""))
        if let userId {
            out.append(contentsOf: #","userId":"#.utf8)
            JSONValue.writeString(userId, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
