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
    /// The position in the user's sequence, for events that are logged and replayable.
    public var eventId: EventID?
    /// When the event was routed.
    public var timestamp: Timestamp
    /// The event's data as JSON text, serialized once (or taken unchanged from the emit
    /// message it arrived in) and spliced into every session's frame as it is.
    public private(set) var dataJSON: String

    public init(name: String, room: String, data: JSONValue, eventId: EventID? = nil, timestamp: Timestamp = .now()) {
        self.init(name: name, room: room, dataJSON: data.jsonText, eventId: eventId, timestamp: timestamp)
    }

    /// - Parameter dataJSON: valid JSON text (not checked here).
    init(name: String, room: String, dataJSON: String, eventId: EventID?, timestamp: Timestamp) {
        self.name = name
        self.room = room
        self.dataJSON = dataJSON
        self.eventId = eventId
        self.timestamp = timestamp
    }

    /// The event's data. For job events: the status update plus `eventId`. Parsed from
    /// ``dataJSON`` on each read: routing never needs it, only code that inspects events.
    public var data: JSONValue {
        get { (try? JSONValue.parse(utf8: Array(dataJSON.utf8))) ?? .null }
        set { dataJSON = newValue.jsonText }
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
    /// `userId` wins over `room` when both are present (the user's room is then the target); an
    /// integer `userId` names the user of its decimal text (``JSONValue/userIdText``).
    /// `data` is validated and kept as the text it arrived as (see ``dataJSON``); for a
    /// repeated member the last one counts, as in ``JSONValue``. Bytes that are not UTF-8 read
    /// as U+FFFD, in `data`'s text too (it goes into WebSocket text frames, which must be UTF-8).
    public init(emitMessage bytes: [UInt8]) throws(EmitMessageError) {
        let fields: EmitFields
        do {
            fields = try bytes.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                try EmitFields(buffer, members: JSONScanner.members(ofObject: buffer))
            }
        } catch {
            // Only the error path tells "valid JSON, but not an object" from "not JSON".
            throw EmitMessageError((try? JSONValue.parse(utf8: bytes)) == nil ? "not JSON" : "not a JSON object")
        }
        guard case .string(let name)? = fields.event, !name.isEmpty else {
            throw EmitMessageError("missing \"event\" (a non-empty string)")
        }
        let room: String
        if let userId = fields.userId?.userIdText {
            room = JobNames.userRoom(userId)
        } else if case .string(let target)? = fields.room, !target.isEmpty {
            room = target
        } else {
            throw EmitMessageError("missing \"userId\" (a non-empty string or an integer) or \"room\" (a non-empty string)")
        }
        var eventId: EventID?
        var timestamp = Timestamp.now()
        if let id = fields.eventId {
            switch id {
            case .string(let text): eventId = EventID(text)
            case .integer(let number): eventId = EventID(number)
            default: eventId = nil
            }
            // SPEC §3.4's message has no eventId: one that is not ours (not decimal, or not an
            // id this system could have issued) belongs to the publisher; the event goes out
            // unnumbered rather than dropped or taken into the user's sequence.
            if let parsed = eventId, !parsed.couldBeIssued(by: timestamp) { eventId = nil }
        }
        if case .string(let text)? = fields.timestamp, let parsed = Timestamp(iso8601: text) { timestamp = parsed }
        self.init(name: name, room: room, dataJSON: fields.data ?? "{}", eventId: eventId, timestamp: timestamp)
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

/// The members of an emit message that routing reads; `data` stays text.
private struct EmitFields {
    var event: JSONValue?
    var userId: JSONValue?
    var room: JSONValue?
    var eventId: JSONValue?
    var timestamp: JSONValue?
    var data: String?

    init(_ bytes: UnsafeBufferPointer<UInt8>, members: [JSONScanner.Member]) throws(JSONSyntaxError) {
        func value(_ range: Range<Int>) throws(JSONSyntaxError) -> JSONValue {
            try JSONValue.parse(utf8: UnsafeBufferPointer(rebasing: bytes[range]))
        }
        for member in members {
            switch member.key {
            case "event": event = try value(member.value)
            case "userId": userId = try value(member.value)
            case "room": room = try value(member.value)
            case "eventId": eventId = try value(member.value)
            case "timestamp": timestamp = try value(member.value)
            case "data": data = String(decoding: UnsafeBufferPointer(rebasing: bytes[member.value]), as: UTF8.self)
            default: break
            }
        }
    }
}
