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
        try FlagRange.check(seconds: redisKeepAlive, flag: "--redis-keep-alive", zero: "no PING")
    }

    /// A Redis broker for `url` with these settings.
    func broker(url: String, logger: Logger) throws -> RedisBroker {
        var configuration = try RedisConfiguration(url: url)
        configuration.keepAliveInterval = redisKeepAlive == 0 ? nil : DurationText.seconds(redisKeepAlive)
        return RedisBroker(configuration: configuration, logger: logger)
    }
}
