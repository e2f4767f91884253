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

/// One argument of a Redis command line, as ``BrokerCommand/writeRedisArguments(into:)`` hands
/// it over: written straight into the request, never collected into arrays first.
enum RedisArgument {
    case text(String)
    case bytes([UInt8])
    case integer(Int64)
}

/// What takes a command line's arguments: the request encoder, or a counter. Generic rather
/// than a closure, so that each use is specialised (counting costs no calls).
protocol RedisArgumentSink {
    mutating func take(_ argument: RedisArgument)
}

/// Counts arguments (a RESP array announces its length first).
struct RedisArgumentCounter: RedisArgumentSink {
    var count = 0
    mutating func take(_ argument: RedisArgument) { count += 1 }
}

extension BrokerCommand {
    /// Hands each argument of the Redis command line for this command to `sink`, in order,
    /// after the checks Redis would make on them (so a bad argument fails the same way on every
    /// backend and before any I/O: it throws before the first argument is handed over).
    func writeRedisArguments(into sink: inout some RedisArgumentSink) throws(BrokerError) {
        func take(_ argument: RedisArgument) { sink.take(argument) }
        switch self {
        case .push(let values, let end, let queue):
            guard !values.isEmpty else {
                throw BrokerError(.invalidArgument, "push needs at least one value")
            }
            take(.text(end == .head ? "LPUSH" : "RPUSH"))
            take(.text(queue))
            for value in values { take(.bytes(value)) }
        case .pop(let end, let queue):
            take(.text(end == .head ? "LPOP" : "RPOP"))
            take(.text(queue))
        case .move(let source, let sourceEnd, let destination, let destinationEnd):
            for text in ["LMOVE", source, destination, sourceEnd.redisSide, destinationEnd.redisSide] { take(.text(text)) }
        case .remove(let value, let count, let queue):
            take(.text("LREM"))
            take(.text(queue))
            take(.integer(Int64(count)))
            take(.bytes(value))
        case .length(let queue):
            take(.text("LLEN"))
            take(.text(queue))
        case .range(let queue, let start, let stop):
            take(.text("LRANGE"))
            take(.text(queue))
            take(.integer(Int64(start)))
            take(.integer(Int64(stop)))
        case .trim(let queue, let start, let stop):
            take(.text("LTRIM"))
            take(.text(queue))
            take(.integer(Int64(start)))
            take(.integer(Int64(stop)))
        case .get(let key):
            take(.text("GET"))
            take(.text(key))
        case .set(let key, let value, let expiry, let condition):
            var milliseconds: Int64?
            if case .after(let duration) = expiry {
                milliseconds = Int64(duration.wholeMilliseconds)
                guard milliseconds! > 0 else {
                    throw BrokerError(.invalidArgument, "ERR invalid expire time in 'set' command (\(duration))")
                }
            }
            take(.text("SET"))
            take(.text(key))
            take(.bytes(value))
            switch expiry {
            case .never: break
            case .keepExisting: take(.text("KEEPTTL"))
            case .after:
                take(.text("PX"))
                take(.integer(milliseconds!))
            }
            switch condition {
            case .always: break
            case .ifAbsent: take(.text("NX"))
            case .ifPresent: take(.text("XX"))
            }
        case .delete(let keys):
            guard !keys.isEmpty else { throw BrokerError(.invalidArgument, "delete needs at least one key") }
            take(.text("DEL"))
            for key in keys { take(.text(key)) }
        case .expire(let key, let duration):
            take(.text("PEXPIRE"))
            take(.text(key))
            take(.integer(Int64(duration.wholeMilliseconds)))
        case .timeToLive(let key):
            take(.text("PTTL"))
            take(.text(key))
        case .increment(let key, let amount):
            take(.text("INCRBY"))
            take(.text(key))
            take(.integer(amount))
        case .publish(let payload, let channel):
            take(.text("PUBLISH"))
            take(.text(channel))
            take(.bytes(payload))
        }
    }

    /// How many arguments the command line has (checking them).
    func redisArgumentCount() throws(BrokerError) -> Int {
        var counter = RedisArgumentCounter()
        try writeRedisArguments(into: &counter)
        return counter.count
    }
}

extension RESPEncoder: RedisArgumentSink {
    /// Encodes `command` straight into the buffer.
    mutating func append(_ command: BrokerCommand) throws(BrokerError) {
        header(try command.redisArgumentCount())
        try command.writeRedisArguments(into: &self)
    }

    /// Encodes an atomic batch as a call of ``AtomicBatch/leanScript`` when it can, else of
    /// ``AtomicBatch/script``: `EVALSHA <sha1>` (`EVAL <script>` without `hashes`), `numkeys` 0,
    /// for the lean script the keys to check (their count, then each), the command count, then
    /// each command as its argument count followed by its arguments. Checks every command
    /// before writing anything.
    mutating func appendAtomicBatch(_ commands: [BrokerCommand], hashes: AtomicBatch.Hashes?) throws(BrokerError) {
        var counts: [Int] = []
        counts.reserveCapacity(commands.count)
        for command in commands { counts.append(try command.redisArgumentCount()) }
        let checked = AtomicBatch.keysToCheck(commands)
        header(4 + (checked.map { 1 + $0.count } ?? 0) + counts.reduce(0) { $0 + 1 + $1 })
        if let hashes {
            argument("EVALSHA")
            argument(checked == nil ? hashes.full : hashes.lean)
        } else {
            argument("EVAL")
            argument(checked == nil ? AtomicBatch.script : AtomicBatch.leanScript)
        }
        argument(0)
        if let checked {
            argument(checked.count)
            for key in checked { argument(key) }
        }
        argument(commands.count)
        for (command, count) in zip(commands, counts) {
            argument(count)
            try command.writeRedisArguments(into: &self)
        }
    }

    mutating func take(_ value: RedisArgument) {
        switch value {
        case .text(let text): argument(text)
        case .bytes(let bytes): argument(bytes)
        case .integer(let number): argument(number)
        }
    }
}
