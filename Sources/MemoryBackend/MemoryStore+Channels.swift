import Broker

/// The subscriptions listening through one glob pattern.
struct PatternSubscribers {
    let pattern: ChannelPattern
    var subscribers: [Subscription]
}

/// One published message and who gets it, worked out under the lock and delivered after it
/// is released (delivery takes each subscription's own lock).
@usableFromInline
struct Publication: Sendable {
    let channel: String
    let payload: [UInt8]
    var direct: [Subscription]
    var patterned: [(pattern: String, subscribers: [Subscription])]

    /// Redis's `PUBLISH` count: one per channel subscription plus one per matching pattern.
    @usableFromInline
    var receivers: Int {
        patterned.reduce(direct.count) { $0 + $1.subscribers.count }
    }

    @usableFromInline
    func deliver() {
        if !direct.isEmpty {
            let message = ChannelMessage(channel: channel, pattern: nil, payload: payload)
            for subscription in direct { subscription.deliver(message) }
        }
        for (pattern, subscribers) in patterned {
            let message = ChannelMessage(channel: channel, pattern: pattern, payload: payload)
            for subscription in subscribers { subscription.deliver(message) }
        }
    }
}

extension MemoryStore {
    /// Who receives a message published on `channel`.
    @usableFromInline
    func publication(of payload: [UInt8], on channel: String) -> Publication {
        var publication = Publication(
            channel: channel, payload: payload, direct: channelSubscribers[channel] ?? [], patterned: [])
        for (name, entry) in patternSubscribers where entry.pattern.matches(channel) {
            publication.patterned.append((name, entry.subscribers))
        }
        return publication
    }

    mutating func addSubscriber(_ subscription: Subscription) {
        for channel in Self.unique(subscription.channels) {
            channelSubscribers[channel, default: []].append(subscription)
        }
        for pattern in Self.unique(subscription.patterns) {
            patternSubscribers[pattern, default: PatternSubscribers(pattern: ChannelPattern(pattern), subscribers: [])]
                .subscribers.append(subscription)
        }
    }

    mutating func removeSubscriber(_ subscription: Subscription) {
        for channel in Self.unique(subscription.channels) {
            guard var subscribers = channelSubscribers.removeValue(forKey: channel) else { continue }
            subscribers.removeAll { $0 === subscription }
            if !subscribers.isEmpty { channelSubscribers[channel] = subscribers }
        }
        for pattern in Self.unique(subscription.patterns) {
            guard var entry = patternSubscribers.removeValue(forKey: pattern) else { continue }
            entry.subscribers.removeAll { $0 === subscription }
            if !entry.subscribers.isEmpty { patternSubscribers[pattern] = entry }
        }
    }

    /// Subscribing twice to one name counts once, as in Redis.
    static func unique(_ names: [String]) -> [String] {
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }

    /// How many subscriptions are registered (channel and pattern), for tests and stats.
    var subscriberCount: Int {
        channelSubscribers.values.reduce(0) { $0 + $1.count }
            + patternSubscribers.values.reduce(0) { $0 + $1.subscribers.count }
    }
}
