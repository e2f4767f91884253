/// Which rooms a client may join on its own request (Socket.IO `join-room`, and the like).
///
/// The default admits names beginning `room:`, up to 200 bytes, at most 64 per session.
/// `user:` rooms are never admitted, whatever the prefixes say: a session is placed in its own
/// user room by the server, and joining another user's would leak their events.
public struct RoomPolicy: Sendable, Hashable {
    /// Prefixes a requested room name must start with.
    public var allowedPrefixes: [String]
    /// Longest room name, in UTF-8 bytes.
    public var maxNameLength: Int
    /// Most rooms a session may hold by request (its own user room does not count).
    public var maxRoomsPerSession: Int

    public init(allowedPrefixes: [String] = ["room:"], maxNameLength: Int = 200, maxRoomsPerSession: Int = 64) {
        self.allowedPrefixes = allowedPrefixes
        self.maxNameLength = maxNameLength
        self.maxRoomsPerSession = maxRoomsPerSession
    }

    /// The default policy.
    public static let `default` = RoomPolicy()

    /// Why `room` may not be joined on request, or `nil` if it may.
    public func refusal(for room: String) -> RoomError? {
        let length = room.utf8.count
        guard length > 0, length <= maxNameLength, room.utf8.allSatisfy({ $0 >= 32 && $0 != 127 }) else {
            return .invalidName(room)
        }
        if room.hasPrefix(RoutedEvent.userRoomPrefix) { return .notAllowed(room) }
        guard allowedPrefixes.contains(where: { room.hasPrefix($0) && room.utf8.count > $0.utf8.count }) else {
            return .notAllowed(room)
        }
        return nil
    }
}

/// Why a session could not join a room.
public enum RoomError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The name is empty, too long, or has control characters.
    case invalidName(String)
    /// The policy does not admit this room (for instance a `user:` room).
    case notAllowed(String)
    /// The session already holds as many rooms as the policy allows.
    case tooManyRooms(limit: Int)
    /// The session is closed.
    case sessionClosed

    public var description: String {
        switch self {
        case .invalidName: return "invalid room name"
        case .notAllowed(let room): return "joining room \"\(room)\" is not allowed"
        case .tooManyRooms(let limit): return "too many rooms (limit \(limit))"
        case .sessionClosed: return "session is closed"
        }
    }
}
