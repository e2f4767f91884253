import ArgumentParser
import Broker
import Foundation
import Logging
import RedisBackend

/// `switchboard bench redis --url URL`: the Redis backend's throughput next to `redis-benchmark`,
/// both measured in this run against the same server with the same shape.
///
/// | shape | switchboard | redis-benchmark |
/// | --- | --- | --- |
/// | (a) one caller, no pipelining | one task, one command at a time | `-c 1 -P 1` |
/// | (b) explicit pipeline of 16 | one task, `execute(_:atomically: false)` of 16 | `-c 1 -P 16` |
/// | (c) 50 concurrent callers | 50 tasks, one command at a time each, auto-pipelined on the shared connection | `-c 50 -P 1` |
///
/// (a) and (b) are also measured with the caller preferring ``RedisBroker/commandExecutor``,
/// which resumes it on the connection's I/O thread: one thread switch per round trip, as
/// redis-benchmark has, instead of two.
///
/// Each runs `SET key:__rand_int__ xxx` then `GET key:__rand_int__` (redis-benchmark's own key
/// and 3-byte value) `--requests` times. Both sides run `--rounds` times, alternately, and the
/// best round of each is reported: on a shared machine the best is the least disturbed.
struct RedisBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Benchmark the Redis backend against redis-benchmark on the same server."
    )

    @Option(name: [.customLong("redis"), .customLong("url")], help: "The Redis server, redis://[user:password@]host:port[/db] (--url is the old name).")
    var url = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379"

    @Option(help: "Requests per test (SET and GET each).")
    var requests = 200_000

    @Option(help: "The redis-benchmark executable.")
    var redisBenchmark = "redis-benchmark"

    @Flag(help: "Measure switchboard only (no redis-benchmark), e.g. to profile it.")
    var skipReference = false

    @Option(help: "Only these shapes (a, b, c), comma-separated.")
    var shapes = "a,b,c"

    @Option(help: "Rounds per shape, alternating switchboard and redis-benchmark; the best of each is shown.")
    var rounds = 3

    struct Shape {
        var label: String
        var clients: Int
        var pipeline: Int
        /// Callers prefer ``RedisBroker/commandExecutor`` (resumed on the connection's I/O thread).
        var onConnectionExecutor = false
    }

    static let shapes = [
        Shape(label: "(a) 1 caller, no pipeline", clients: 1, pipeline: 1),
        Shape(label: "(a) same, on commandExecutor", clients: 1, pipeline: 1, onConnectionExecutor: true),
        Shape(label: "(b) 1 caller, pipeline 16", clients: 1, pipeline: 16),
        Shape(label: "(b) same, on commandExecutor", clients: 1, pipeline: 16, onConnectionExecutor: true),
        Shape(label: "(c) 50 callers, auto-pipelined", clients: 50, pipeline: 1),
    ]

    func run() async throws {
        let configuration = try RedisConfiguration(url: url)
        var logger = Logger(label: "switchboard.bench")
        logger.logLevel = .warning
        let broker = RedisBroker(configuration: configuration, logger: logger)
        try await broker.ping()
        var table = BenchTable(
            title: "switchboard bench redis: \(configuration.address), \(requests) requests per test, "
                + "best of \(max(1, rounds)) rounds",
            headers: ["shape", "op", "switchboard", "redis-benchmark", "ratio"])
        let selected = Set(shapes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        for shape in Self.shapes where selected.contains(String(shape.label.dropFirst().prefix(1))) {
            var ours: [String: Double] = [:]
            var theirs: [String: Double] = [:]
            for _ in 0..<max(1, rounds) {
                ours.merge(try await measure(broker, shape), uniquingKeysWith: max)
                if !skipReference {
                    theirs.merge(try await redisBenchmark(configuration, shape), uniquingKeysWith: max)
                }
            }
            for op in ["SET", "GET"] {
                let mine = ours[op] ?? 0
                let reference = theirs[op]
                table.rows.append([
                    shape.label, op, formatRate(mine), reference.map(formatRate) ?? "n/a",
                    reference.map { String(format: "%.0f%%", 100 * mine / $0) } ?? "n/a",
                ])
            }
        }
        print(table.render())
        broker.shutdown()
    }

    /// Operations per second for SET and GET in `shape` through the broker.
    private func measure(_ broker: RedisBroker, _ shape: Shape) async throws -> [String: Double] {
        let key = "key:__rand_int__"
        let value = Array("xxx".utf8)
        var results: [String: Double] = [:]
        for op in ["SET", "GET"] {
            let command: BrokerCommand = op == "SET"
                ? .set(key: key, value: value, expiry: .never, condition: .always) : .get(key: key)
            let perClient = requests / shape.clients
            let batch = [BrokerCommand](repeating: command, count: shape.pipeline)
            let start = ContinuousClock.now
            try await withTaskExecutorPreference(shape.onConnectionExecutor ? broker.commandExecutor : nil) {
              try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<shape.clients {
                    group.addTask {
                        if shape.pipeline == 1 {
                            for _ in 0..<perClient { _ = try await broker.execute(command) }
                        } else {
                            for _ in 0..<(perClient / shape.pipeline) {
                                _ = try await broker.execute(batch, atomically: false)
                            }
                        }
                    }
                }
                try await group.waitForAll()
              }
            }
            let elapsed = start.duration(to: .now)
            let done = shape.pipeline == 1
                ? perClient * shape.clients : (perClient / shape.pipeline) * shape.pipeline * shape.clients
            results[op] = Double(done) / elapsed.seconds
        }
        return results
    }

    /// redis-benchmark's figures for the same shape (`-q --csv`: `"SET","123456.79",…`).
    private func redisBenchmark(_ configuration: RedisConfiguration, _ shape: Shape) async throws -> [String: Double] {
        let server = configuration.socketPath.map { ["-s", $0] } ?? ["-h", configuration.host, "-p", String(configuration.port)]
        var arguments = [redisBenchmark] + server + [
            "-c", String(shape.clients), "-P", String(shape.pipeline), "-n", String(requests),
            "-t", "set,get", "-q", "--csv",
        ]
        if let password = configuration.password { arguments += ["-a", password] }
        if let user = configuration.username { arguments += ["--user", user] }
        if configuration.database != 0 { arguments += ["--dbnum", String(configuration.database)] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        // Wait for the exit without blocking a pool thread; the CSV is far below a pipe's buffer.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume()
            }
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        var rates: [String: Double] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count >= 2, let rate = Double(fields[1]) { rates[fields[0]] = rate }
        }
        if rates.isEmpty { print("note: redis-benchmark gave no figures for \(shape.label) (is it installed?)") }
        return rates
    }
}
