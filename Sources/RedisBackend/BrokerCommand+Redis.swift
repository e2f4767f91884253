import Broker

extension QueueEnd {
    /// `LEFT`/`RIGHT`, as `LMOVE`/`BLMOVE` name the ends.
    var redisSide: String { self == .head ? "LEFT" : "RIGHT" }
}

extension Duration {
    /// Seconds as Redis's blocking commands take them (a decimal; `0` would mean forever).
    var redisSeconds: String {
        let milliseconds = max(1, millisecondsRoundedUp)
        return "\(milliseconds / 1000).\(String(milliseconds % 1000).leftPadded(to: 3))"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension BrokerCommand {
    /// The Redis command line for this command, after the checks Redis would make on its
    /// arguments (so a bad argument fails the same way on every backend and before any I/O).
    func redisArguments() throws(BrokerError) -> [[UInt8]] {
        func text(_ values: String...) -> [[UInt8]] { values.map { Array($0.utf8) } }
        switch self {
        case .push(let values, let end, let queue):
            guard !values.isEmpty else {
                throw BrokerError(.invalidArgument, "push needs at least one value")
            }
            return text(end == .head ? "LPUSH" : "RPUSH", queue) + values
        case .pop(let end, let queue):
            return text(end == .head ? "LPOP" : "RPOP", queue)
        case .move(let source, let sourceEnd, let destination, let destinationEnd):
            return text("LMOVE", source, destination, sourceEnd.redisSide, destinationEnd.redisSide)
        case .remove(let value, let count, let queue):
            return text("LREM", queue, String(count)) + [value]
        case .length(let queue):
            return text("LLEN", queue)
        case .range(let queue, let start, let stop):
            return text("LRANGE", queue, String(start), String(stop))
        case .trim(let queue, let start, let stop):
            return text("LTRIM", queue, String(start), String(stop))
        case .get(let key):
            return text("GET", key)
        case .set(let key, let value, let expiry, let condition):
            var arguments = text("SET", key) + [value]
            switch expiry {
            case .never: break
            case .keepExisting: arguments += text("KEEPTTL")
            case .after(let duration):
                let milliseconds = duration.wholeMilliseconds
                guard milliseconds > 0 else {
                    throw BrokerError(.invalidArgument, "ERR invalid expire time in 'set' command (\(duration))")
                }
                arguments += text("PX", String(milliseconds))
            }
            switch condition {
            case .always: break
            case .ifAbsent: arguments += text("NX")
            case .ifPresent: arguments += text("XX")
            }
            return arguments
        case .delete(let keys):
            guard !keys.isEmpty else { throw BrokerError(.invalidArgument, "delete needs at least one key") }
            return text("DEL") + keys.map { Array($0.utf8) }
        case .expire(let key, let duration):
            return text("PEXPIRE", key, String(duration.wholeMilliseconds))
        case .timeToLive(let key):
            return text("PTTL", key)
        case .increment(let key, let amount):
            return text("INCRBY", key, String(amount))
        case .publish(let payload, let channel):
            return text("PUBLISH", channel) + [payload]
        }
    }
}

extension RESPEncoder {
    /// Encodes `command` straight into the buffer (the hot path: no intermediate argument
    /// arrays), after the same checks as ``BrokerCommand/redisArguments()``.
    mutating func append(_ command: BrokerCommand) throws(BrokerError) {
        switch command {
        case .get(let key):
            header(2)
            argument("GET")
            argument(key)
        case .set(let key, let value, .never, .always):
            header(3)
            argument("SET")
            argument(key)
            argument(value)
        case .push(let values, let end, let queue) where !values.isEmpty:
            header(2 + values.count)
            argument(end == .head ? "LPUSH" : "RPUSH")
            argument(queue)
            for value in values { argument(value) }
        case .pop(let end, let queue):
            header(2)
            argument(end == .head ? "LPOP" : "RPOP")
            argument(queue)
        case .publish(let payload, let channel):
            header(3)
            argument("PUBLISH")
            argument(channel)
            argument(payload)
        default:
            append(try command.redisArguments())
        }
    }
}
