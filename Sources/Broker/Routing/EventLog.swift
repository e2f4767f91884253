/// Each user's durable event sequence on the broker: the log `ws:pending:user:<userId>`
/// (the newest `capacity` events, oldest first, TTL 24 h), the id counter
/// `ws:seq:user:<userId>`, and the delivered watermark `ws:delivered:user:<userId>`.
///
/// Appending is done inside the caller's optimistic transaction (``appendCommands(_:)``),
/// which also watches the counter: so the event is logged, numbered and published on
/// `ws:emit` exactly once, by exactly one node, atomically with whatever state change caused
/// it (a job record update, a job creation).
///
/// ## Offline delivery: the delivered watermark
/// A client that connects without a `lastEventId` gets the events "routed while the user had
/// no connection anywhere". Every node that hands an event to at least one of its sessions
/// records the event's id as the user's delivered watermark (coalesced, see
/// ``Router``); events above the watermark are exactly those no connection on any node has
/// received. A watermark may briefly lag by the events of the last few milliseconds, or step
/// back when two nodes write at once; the cost is a possible repeat on a *new* connection,
/// never a loss, and never a repeat on the same connection.
public struct EventLog: Sendable {
    /// Events kept per user (default 100, as in the original system).
    public var capacity: Int
    /// How long a user's log, counter and watermark live after their last write.
    public var lifetime: Duration

    public init(capacity: Int = 100, lifetime: Duration = JobNames.recordLifetime) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    /// `ws:pending:user:<userId>`.
    public func logKey(_ userId: String) -> String { JobNames.eventLog(userId: userId) }
    /// `ws:seq:user:<userId>`: the last event id handed out.
    public func sequenceKey(_ userId: String) -> String { "ws:seq:user:\(userId)" }
    /// `ws:delivered:user:<userId>`: the highest event id some connection received.
    public func watermarkKey(_ userId: String) -> String { "ws:delivered:user:\(userId)" }

    /// The commands that number, log and publish `event` (which must carry its ``EventID``
    /// and target a user room). Run them atomically, in a transaction watching
    /// ``sequenceKey(_:)`` whose current value gave the id (``EventID/next(after:now:)``).
    public func appendCommands(_ event: RoutedEvent) -> [BrokerCommand] {
        appendCommands([event])
    }

    /// The commands that log and publish `events` (each numbered, each for a user room, ids
    /// increasing per user in array order): per user one counter write, one `RPUSH` of all
    /// its events, one `LTRIM` and one `PEXPIRE`; then one `PUBLISH` per event, in order.
    public func appendCommands(_ events: [RoutedEvent]) -> [BrokerCommand] {
        var users: [String] = []
        var byUser: [String: (last: EventID, messages: [[UInt8]])] = [:]
        var publishes: [BrokerCommand] = []
        publishes.reserveCapacity(events.count)
        for event in events {
            precondition(event.eventId != nil && event.userId != nil, "only numbered user events are logged")
            let userId = event.userId!
            let message = event.emitMessage
            if byUser[userId] == nil {
                users.append(userId)
                byUser[userId] = (event.eventId!, [message])
            } else {
                byUser[userId]!.last = event.eventId!
                byUser[userId]!.messages.append(message)
            }
            publishes.append(.publish(payload: message, channel: JobNames.emitChannel))
        }
        var commands: [BrokerCommand] = []
        commands.reserveCapacity(users.count * 4 + publishes.count)
        for userId in users {
            let (last, messages) = byUser[userId]!
            let log = logKey(userId)
            commands.append(
                .set(key: sequenceKey(userId), value: Array(last.description.utf8), expiry: .after(lifetime), condition: .always))
            commands.append(.push(messages, end: .tail, queue: log))
            commands.append(.trim(queue: log, start: -capacity, stop: -1))
            commands.append(.expire(key: log, after: lifetime))
        }
        return commands + publishes
    }

    /// Parses the counter's stored value.
    public static func eventId(stored bytes: [UInt8]?) -> EventID? {
        bytes.flatMap { EventID(String(decoding: $0, as: UTF8.self)) }
    }

    /// The logged events of `userId` with ids above `after` (all of them when `nil`), oldest
    /// first. Entries that do not parse are skipped.
    public func events(of userId: String, after: EventID?, on broker: any Broker) async throws -> [RoutedEvent] {
        Self.events(in: try await broker.range(of: logKey(userId)), after: after)
    }

    /// What a session replays when it opens.
    public enum Replay: Sendable {
        /// The events to replay, oldest first; the floor the session keeps (ids at or below it
        /// are repeats; none when the user's sequence has expired, since any id handed out from
        /// now on is new to the client); and the user's last event id when the log was read
        /// (`nil`: no sequence yet), where catching up after a loss starts from.
        case events([RoutedEvent], floor: EventID?, last: EventID?)
        /// The id is above the last one the user's sequence handed out: this system did not
        /// issue it (another deployment's, or made up). Taken as a floor it would hide every
        /// live event until the sequence passed it, so it must not be used.
        case notIssued
    }

    /// What a session of `userId` replays, read in one pipelined round trip with the user's
    /// counter:
    /// - with `after` (the client's last event id): the logged events after it, or
    ///   ``Replay/notIssued`` if the counter never reached it;
    /// - without: the events no connection of the user has received yet, those above the
    ///   delivered watermark and above `deliveredHere` (what the caller's node delivered and
    ///   has not written yet).
    public func replay(
        of userId: String, after: EventID?, deliveredHere: EventID? = nil, on broker: any Broker
    ) async throws -> Replay {
        var commands: [BrokerCommand] = [.get(key: sequenceKey(userId)), .range(queue: logKey(userId), start: 0, stop: -1)]
        if after == nil { commands.append(.get(key: watermarkKey(userId))) }
        let replies = try await broker.execute(commands, atomically: false)
        let last = Self.eventId(stored: try replies[0].value())
        let entries = try replies[1].values()
        if let after {
            guard last.map({ after <= $0 }) ?? true else { return .notIssued }
            return .events(Self.events(in: entries, after: after), floor: last == nil ? nil : after, last: last)
        }
        let delivered = EventID.later(Self.eventId(stored: try replies[2].value()), deliveredHere)
        return .events(Self.events(in: entries, after: delivered), floor: nil, last: last)
    }

    static func events(in entries: [[UInt8]], after: EventID?) -> [RoutedEvent] {
        var events: [RoutedEvent] = []
        events.reserveCapacity(entries.count)
        for entry in entries {
            guard let event = try? RoutedEvent(emitMessage: entry), let id = event.eventId else { continue }
            if let after, id <= after { continue }
            events.append(event)
        }
        // Log order is id order (appends are serialized by the counter), but sort anyway:
        // a log written by other software must not make replay go backwards.
        events.sort { $0.eventId! < $1.eventId! }
        return events
    }

    /// The commands that record `eventId` as delivered to `userId`.
    public func watermarkCommand(userId: String, eventId: EventID) -> BrokerCommand {
        .set(key: watermarkKey(userId), value: Array(eventId.description.utf8), expiry: .after(lifetime), condition: .always)
    }
}
