/// A message received on a subscription.
public struct ChannelMessage: Sendable, Hashable {
    /// The channel it was published on.
    public var channel: String
    /// The subscribed pattern that matched, or `nil` when the channel was subscribed directly.
    public var pattern: String?
    /// The published bytes, unchanged.
    public var payload: [UInt8]

    public init(channel: String, pattern: String? = nil, payload: [UInt8]) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}

/// How a subscription buffers messages its consumer has not taken yet. Every policy is
/// bounded: a slow consumer never grows memory without limit.
public enum SubscriptionBuffering: Sendable, Hashable {
    /// Keep the newest `capacity` messages; when full, the oldest is dropped.
    case dropOldest(capacity: Int)
    /// Keep the oldest `capacity` messages; when full, the new message is dropped.
    case dropNewest(capacity: Int)
    /// When more than `capacity` messages wait, end the subscription: iteration throws
    /// ``BrokerError/Code/subscriberOverflow`` after the buffered messages (Redis itself
    /// disconnects pub/sub clients that exceed their output buffer).
    case disconnect(capacity: Int)

    /// Keeps the newest 10,000 messages.
    public static let `default` = SubscriptionBuffering.dropOldest(capacity: 10_000)

    public var capacity: Int {
        switch self {
        case .dropOldest(let capacity), .dropNewest(let capacity), .disconnect(let capacity):
            return max(1, capacity)
        }
    }
}
