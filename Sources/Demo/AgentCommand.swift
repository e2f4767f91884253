import ArgumentParser
import Broker
import Foundation
import Gateway
import Logging
import RedisBackend
import ServiceLifecycle
import UnixSignals

/// `switchboard agent`: the reliable Swift agent (SPEC §4) running the demo rebalance handler
/// against a Redis that a gateway fills.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Take jobs from Redis reliably, run the demo rebalance handler, publish their status.",
        discussion: """
            Jobs move from <prefix>:<type>:jobs to <prefix>:<type>:processing in one step and hold a \
            lease renewed while they run; a job whose agent dies is put back after the visibility \
            timeout. SIGTERM or SIGINT stops taking jobs, finishes those in flight, then exits 0.
            """
    )

    @Option(help: "Redis URL: redis://[user:password@]host:port[/db], rediss:// for TLS, unix:///path/redis.sock for a local socket (default: env REDIS_URL or UPSTASH_REDIS_URL).")
    var redis: String?

    @OptionGroup var redisOptions: RedisOptions

    @Option(parsing: .unconditional, help: "How many jobs run at once (1-10000).")
    var concurrency = 1

    @Option(
        parsing: .unconditional,
        help: "Seconds a taken job may go without a sign of life before another agent takes it again (0.1-86400).")
    var visibilityTimeout = 30.0

    @Option(parsing: .unconditional, help: "Attempts per job (first included) before a transient failure becomes an error.")
    var maxAttempts = 3

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Times a job is put back on the queue after its lease lapsed before the next lapse fails it instead, or 'unlimited'.",
            valueName: "n"))
    var maxLapses = "5"

    @Option(help: "The key prefix.")
    var prefix = "agent"

    @Option(help: "The job type served.")
    var type = "rebalance"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: env LOG_LEVEL or info).")
    var logLevel: String?

    /// How many jobs may run at once. Each running job is a task with a lease renewed every few
    /// seconds; ten thousand already means over a thousand renewals a second against Redis, and a
    /// larger number is more likely a typo than a plan.
    static let concurrencyRange = 1...10_000

    /// `--max-lapses` as ``AgentConfiguration/maxLapses``: a count, or `nil` for `unlimited`.
    func lapseLimit() throws -> Int? {
        if maxLapses == "unlimited" { return nil }
        guard let count = Int(maxLapses), count >= 0 else {
            throw ValidationError("--max-lapses takes a count (0 or more) or 'unlimited', not '\(maxLapses)'")
        }
        return count
    }

    func validate() throws {
        try FlagRange.check(concurrency, flag: "--concurrency", in: Self.concurrencyRange)
        try FlagRange.check(seconds: visibilityTimeout, flag: "--visibility-timeout")
        guard maxAttempts >= 1 else { throw ValidationError("--max-attempts must be at least 1") }
        _ = try lapseLimit()
        _ = try LogLevelSetting.level(flag: logLevel)
        guard !prefix.isEmpty, !type.isEmpty else { throw ValidationError("--prefix and --type must not be empty") }
        guard RedisOptions.url(given: redis) != nil else {
            throw ValidationError("switchboard agent needs a Redis: --redis URL, or env REDIS_URL / UPSTASH_REDIS_URL")
        }
    }

    func run() async throws {
        // As serve does: a handler's own connections (up to --concurrency jobs at once) and the
        // agent's Redis connections count against the soft limit, 1024 by default on Linux.
        let openFiles = OpenFileLimit.raise()
        let level = try LogLevelSetting.level(flag: logLevel)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "switchboard.agent")
        logger.info("open-file limit", metadata: ["openFileLimit": "\(openFiles.map(String.init) ?? "unknown")"])
        guard let url = RedisOptions.url(given: redis) else { throw ValidationError("switchboard agent needs a Redis") }  // checked in validate()
        let broker = try redisOptions.broker(url: url, logger: logger)
        var configuration = AgentConfiguration(
            names: JobNames(prefix: prefix, type: type),
            concurrency: concurrency,
            visibilityTimeout: DurationText.seconds(visibilityTimeout),
            retry: RetryPolicy(maxAttempts: maxAttempts)
        )
        configuration.maxLapses = try lapseLimit()
        let agent = Agent(broker: broker, handler: DemoRebalanceHandler(), configuration: configuration, logger: logger)
        // Services shut down in reverse order: the agent drains first, then the connection closes.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: broker), RedisStartupCheck(broker: broker, url: url).groupMember, .init(service: agent)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger))
        try await group.run()
    }
}
