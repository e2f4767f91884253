import Foundation
import ArgumentParser
import Broker
import Logging
import RedisBackend

/// Redis settings that `serve` and `agent` share beside the URL.
struct RedisOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Seconds a Redis connection may send nothing before it sends a PING; 0 sends none (default: the URL's health_check_interval, else 30).",
        discussion: "Keep it below the server's own 'timeout' setting (CONFIG GET timeout; 0 there means none), which closes a client that sent nothing for that long.",
        valueName: "seconds"))
    var redisKeepAlive: Double?

    @Option(help: ArgumentHelp(
        "PEM file of the CA certificates that sign a rediss:// server's certificate (default: the system's CAs).",
        valueName: "path"))
    var redisCAFile: String?

    @Option(help: ArgumentHelp(
        "PEM certificate this client presents to a rediss:// server that asks for one (tls-auth-clients).",
        valueName: "path"))
    var redisCertFile: String?

    @Option(help: ArgumentHelp(
        "PEM private key of --redis-cert-file (an encrypted one takes its passphrase from env REDIS_KEY_PASSPHRASE).",
        valueName: "path"))
    var redisKeyFile: String?

    @Flag(help: ArgumentHelp(
        "Accept any certificate from a rediss:// server: encrypted, but not safe from impersonation.",
        discussion: "Only for a service with self-signed certificates and no CA to give (Heroku Redis); prefer --redis-ca-file."))
    var redisTLSInsecure = false

    /// The passphrase of an encrypted client key, from the environment rather than a flag: a
    /// flag's value shows in `ps` to every user of the machine.
    static var keyPassphrase: String? {
        ProcessInfo.processInfo.environment["REDIS_KEY_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    private var givesTLS: Bool { redisCAFile != nil || redisCertFile != nil || redisKeyFile != nil || redisTLSInsecure }

    func validate() throws {
        if let redisKeepAlive { try FlagRange.check(seconds: redisKeepAlive, flag: "--redis-keep-alive", zero: "no PING") }
        if (redisCertFile == nil) != (redisKeyFile == nil) {
            throw ValidationError("--redis-cert-file and --redis-key-file go together")
        }
        // Checked here too, so that a bad file is named even when no Redis URL is given.
        if givesTLS {
            do {
                try RedisTLS(
                    caFile: redisCAFile, certificateFile: redisCertFile, keyFile: redisKeyFile,
                    keyPassphrase: Self.keyPassphrase
                ).check()
            } catch {
                throw ValidationError(error.message)
            }
        }
    }

    /// The Redis URL `serve` and `agent` use: `--redis`, else env `REDIS_URL`, else
    /// `UPSTASH_REDIS_URL`; empty counts as unset (`REDIS_URL= switchboard agent` names the
    /// missing setting).
    static func url(given flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        return nonEmpty(flag) ?? nonEmpty(environment["REDIS_URL"]) ?? nonEmpty(environment["UPSTASH_REDIS_URL"])
    }

    /// A Redis broker for `url` with these settings. A flag overrides what the URL's
    /// parameters say about the same thing (`--redis-ca-file` over `ssl_ca_certs`,
    /// `--redis-keep-alive` over `health_check_interval`, …).
    /// - Throws: a ``StartupError`` naming the URL (its password hidden) and what is wrong.
    func broker(url: String, logger: Logger) throws -> RedisBroker {
        do {
            return try makeBroker(url: url, logger: logger)
        } catch {
            throw StartupError("--redis \(RedisConfiguration.redacted(url)): \(StartupError.message(of: error))")
        }
    }

    private func makeBroker(url: String, logger: Logger) throws -> RedisBroker {
        var configuration = try RedisConfiguration(url: url)
        if givesTLS {
            guard var tls = configuration.tls else {
                throw ValidationError(
                    "--redis-ca-file, --redis-cert-file, --redis-key-file and --redis-tls-insecure are for TLS: "
                        + "give a rediss:// URL")
            }
            if let redisCAFile { tls.caFile = redisCAFile }
            if let redisCertFile, let redisKeyFile { (tls.certificateFile, tls.keyFile) = (redisCertFile, redisKeyFile) }
            if redisTLSInsecure { tls.verifiesCertificate = false }
            configuration.tls = tls
        }
        if configuration.tls?.keyFile != nil, configuration.tls?.keyPassphrase == nil {
            configuration.tls?.keyPassphrase = Self.keyPassphrase
        }
        if let tls = configuration.tls {
            do {
                try tls.check()
            } catch {
                throw ValidationError(error.message)
            }
            if !tls.verifiesCertificate {
                logger.warning("the Redis server's certificate is not verified (--redis-tls-insecure or ssl_cert_reqs=none)")
            } else if !tls.verifiesHostname {
                logger.warning("the Redis server's certificate chain is verified, but not that it names the host (ssl_check_hostname=false)")
            }
        }
        if let redisKeepAlive { configuration.keepAliveInterval = redisKeepAlive == 0 ? nil : DurationText.seconds(redisKeepAlive) }
        return RedisBroker(configuration: configuration, logger: logger)
    }
}
