import ArgumentParser
import Broker
import Logging
import RedisBackend

/// Redis settings that `serve` and `agent` share beside the URL.
struct RedisOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Seconds a Redis connection may send nothing before it sends a PING; 0 sends none.",
        discussion: "Keep it below the server's own 'timeout' setting (CONFIG GET timeout; 0 there means none), which closes a client that sent nothing for that long."))
    var redisKeepAlive = 30.0

    @Option(help: ArgumentHelp(
        "PEM file of the CA certificates that sign a rediss:// server's certificate (default: the system's CAs).",
        valueName: "path"))
    var redisCAFile: String?

    @Flag(help: ArgumentHelp(
        "Accept any certificate from a rediss:// server: encrypted, but not safe from impersonation.",
        discussion: "Only for a service with self-signed certificates and no CA to give (Heroku Redis); prefer --redis-ca-file."))
    var redisTLSInsecure = false

    func validate() throws {
        try FlagRange.check(seconds: redisKeepAlive, flag: "--redis-keep-alive", zero: "no PING")
        if let redisCAFile {
            do {
                try RedisTLS(caFile: redisCAFile).check()
            } catch {
                throw ValidationError("--redis-ca-file: \(error.message)")
            }
        }
    }

    /// A Redis broker for `url` with these settings.
    func broker(url: String, logger: Logger) throws -> RedisBroker {
        var configuration = try RedisConfiguration(url: url)
        if redisCAFile != nil || redisTLSInsecure {
            guard configuration.tls != nil else {
                let flag = redisCAFile != nil ? "--redis-ca-file" : "--redis-tls-insecure"
                throw ValidationError("\(flag) is for TLS: give a rediss:// URL")
            }
            configuration.tls = RedisTLS(caFile: redisCAFile, verifiesCertificate: !redisTLSInsecure)
            if redisTLSInsecure {
                logger.warning("--redis-tls-insecure: the Redis server's certificate is not verified")
            }
        }
        configuration.keepAliveInterval = redisKeepAlive == 0 ? nil : DurationText.seconds(redisKeepAlive)
        return RedisBroker(configuration: configuration, logger: logger)
    }
}
