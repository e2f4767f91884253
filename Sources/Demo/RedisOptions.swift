import ArgumentParser
import Logging
import RedisBackend

/// Redis settings that `serve` and `agent` share beside the URL.
struct RedisOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Seconds a Redis connection may send nothing before it sends a PING; 0 sends none.",
        discussion: "Keep it below the server's own 'timeout' setting (CONFIG GET timeout; 0 there means none), which closes a client that sent nothing for that long."))
    var redisKeepAlive = 30.0

    func validate() throws {
        // 0 turns the PING off; any other value is a duration as every seconds flag is.
        guard redisKeepAlive == 0 || FlagRange.seconds.contains(redisKeepAlive) else {
            throw ValidationError("--redis-keep-alive must be 0 (no PING) or from 0.1 to 86400 seconds, not \(redisKeepAlive)")
        }
    }

    /// A Redis broker for `url` with these settings.
    func broker(url: String, logger: Logger) throws -> RedisBroker {
        var configuration = try RedisConfiguration(url: url)
        configuration.keepAliveInterval = redisKeepAlive == 0 ? nil : DurationText.seconds(redisKeepAlive)
        return RedisBroker(configuration: configuration, logger: logger)
    }
}
