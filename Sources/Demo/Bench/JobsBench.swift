import ArgumentParser
import Broker
import DequeModule
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MemoryBackend
import RedisBackend
import ServiceLifecycle
import Synchronization

/// `switchboard bench jobs`: jobs per second from creation to the `done` status, through the
/// reliable agent with the demo handler, at agent concurrency 1 and 32, on the memory backend
/// and (with `--redis`) on Redis, where it also counts Redis commands per job.
struct JobsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Jobs/s from create to done through the reliable agent; Redis commands per job.",
        discussion: """
            Creators add jobs as the gateway does (record with a 24 h TTL and LPUSH, atomically) while \
            at most --backlog jobs wait; an agent with the demo handler processes them; the run ends \
            when every job's done status has been heard on the status channel. jobs/CPU-s divides by \
            the CPU time used (this process, plus redis-server's for Redis), which stays meaningful \
            when other processes share the cores.
            """
    )

    @Option(help: "Jobs per memory-backend measurement.")
    var jobs = 200_000

    @Option(help: "Jobs per Redis measurement.")
    var redisJobs = 50_000

    @Option(help: "Redis URL; without it only the memory backend is measured.")
    var redis: String?

    @Option(help: "Agent concurrencies to measure, comma-separated.")
    var concurrency = "1,32"

    @Option(help: "Tasks creating jobs in parallel.")
    var creators = 16

    @Option(help: "Most jobs created but not yet done at any moment (the queue's backlog).")
    var backlog = 256

    func run() async throws {
        let concurrencies = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !concurrencies.isEmpty, concurrencies.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--concurrency takes positive integers, e.g. 1,32")
        }
        var table = BenchTable(
            title: "jobs: create → agent (demo handler) → done received on the status channel",
            headers: ["backend", "agent concurrency", "jobs", "seconds", "jobs/s", "jobs/CPU-s", "commands/job"])
        for agents in concurrencies {
            let broker = MemoryBroker()
            _ = try await Self.measure(broker: broker, jobs: max(1, jobs / 10), concurrency: agents, creators: creators, backlog: backlog)  // warm-up
            let run = try await Self.measure(
                broker: broker, jobs: jobs, concurrency: agents, creators: creators, backlog: backlog)
            table.rows.append([
                "memory", "\(agents)", "\(jobs)", String(format: "%.2f", run.seconds), formatRate(run.rate),
                formatRate(Double(jobs) / run.cpuSeconds), "-",
            ])
        }
        if let url = redis {
            let logger = Logger(label: "switchboard.bench")
            let broker = try RedisBroker(url: url, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await broker.run() }
                try await broker.ping()
                var breakdown: [String: Int] = [:]
                for agents in concurrencies {
                    _ = try await Self.measure(
                        broker: broker, jobs: max(1, redisJobs / 10), concurrency: agents, creators: creators,
                        backlog: backlog)  // warm-up: connections open, pools filled
                    let before = try await Self.commandCounts(broker)
                    let serverCPUBefore = try await Self.serverCPUSeconds(broker)
                    let run = try await Self.measure(
                        broker: broker, jobs: redisJobs, concurrency: agents, creators: creators, backlog: backlog)
                    let serverCPU = try await Self.serverCPUSeconds(broker) - serverCPUBefore
                    let after = try await Self.commandCounts(broker)
                    var total = 0
                    for (command, calls) in after {
                        let delta = calls - (before[command] ?? 0) - (command == "info" ? 1 : 0)
                        total += delta
                        breakdown[command, default: 0] += delta
                    }
                    table.rows.append([
                        "redis", "\(agents)", "\(redisJobs)", String(format: "%.2f", run.seconds), formatRate(run.rate),
                        formatRate(Double(redisJobs) / (run.cpuSeconds + serverCPU)),
                        String(format: "%.2f", Double(total) / Double(redisJobs)),
                    ])
                }
                print(table.render())
                let jobsMeasured = Double(redisJobs * concurrencies.count)
                let perCommand = breakdown.filter { $0.value > 0 }.sorted { $0.value > $1.value }
                    .map { "\($0.key) " + String(format: "%.2f", Double($0.value) / jobsMeasured) }
                print("redis commands per job, by command: " + perCommand.joined(separator: ", "))
                broker.shutdown()
                group.cancelAll()
            }
            return
        }
        print(table.render())
    }

    struct Run {
        var seconds: Double
        var rate: Double
        /// CPU time this process used meanwhile (all threads): a figure that holds when other
        /// processes compete for the cores, as they do on a shared machine.
        var cpuSeconds: Double
    }

    /// CPU time used by this process so far.
    static func processCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// CPU time the Redis server has used (`INFO cpu`: user + system, main thread and all).
    static func serverCPUSeconds(_ broker: RedisBroker) async throws -> Double {
        let info = try await broker.serverInfo("cpu")
        return (Double(info["used_cpu_user"] ?? "") ?? 0) + (Double(info["used_cpu_sys"] ?? "") ?? 0)
    }

    /// Creates `jobs` jobs while an agent of `concurrency` workers processes them; times from
    /// the first creation to the last `done` heard on the status channel.
    static func measure(
        broker: some Broker, jobs: Int, concurrency: Int, creators: Int, backlog: Int
    ) async throws -> Run {
        // A fresh prefix per run: nothing left over from an earlier run is counted.
        let names = JobNames(prefix: "bench\(UInt32.random(in: 0...UInt32.max))", type: "rebalance")
        var logger = Logger(label: "switchboard.bench.agent")
        logger.logLevel = .warning
        let agent = Agent(
            broker: broker, handler: DemoRebalanceHandler(),
            configuration: AgentConfiguration(names: names, concurrency: concurrency), logger: logger)
        let group = ServiceGroup(services: [agent], logger: logger)
        return try await broker.subscribe(
            to: [names.statusChannel], patterns: [], buffering: .dropNewest(capacity: jobs * 2 + 16)
        ) { subscription in
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let window = BacklogWindow(size: max(backlog, 2 * concurrency))
                let next = JobCounter()
                let start = ContinuousClock.now
                let startCPU = processCPUSeconds()
                for _ in 0..<creators {
                    tasks.addTask {
                        while true {
                            let n = next.take()
                            guard n < jobs else { return }
                            await window.admit(n)
                            try await create(n, names: names, on: broker)
                        }
                    }
                }
                var done = 0
                var failed = 0
                var finished = 0
                for try await message in subscription {
                    if message.payload.contains(subsequence: doneMarker) {
                        done += 1
                    } else if message.payload.contains(subsequence: errorMarker) {
                        failed += 1
                    }
                    if done + failed != finished {
                        finished = done + failed
                        window.finished(finished)
                        if finished == jobs { break }
                    }
                }
                let elapsed = ContinuousClock.now - start
                let cpu = processCPUSeconds() - startCPU
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                guard failed == 0, done == jobs else {
                    throw BrokerError(.unexpectedReply, "\(failed) of \(jobs) jobs failed; \(subscription.droppedCount) dropped")
                }
                return Run(seconds: elapsed.seconds, rate: Double(jobs) / elapsed.seconds, cpuSeconds: cpu)
            }
        }
    }

    static let doneMarker = Array(#""status":"done""#.utf8)
    static let errorMarker = Array(#""status":"error""#.utf8)

    /// Creates one job in the SPEC's format: the record (TTL 24 h) and the id LPUSH'd, in one
    /// atomic step. The record is written as the gateway writes it (`StoredRecord`'s direct
    /// writer, SPEC §1's member order), not through a `JSONValue` of the whole record.
    static func create(_ n: Int, names: JobNames, on broker: some Broker) async throws {
        let time = Timestamp.now()
        let id = "\(time.milliseconds)-\(n)"
        let stamp = time.iso8601
        let record = JobRecord(
            jobId: id, type: names.type, status: .created, user: JobRecord.Owner(publicKey: "bench-user-\(n % 64)"),
            payload: ["amount": .integer(Int64(100 + n % 900))], createdAt: stamp, updatedAt: stamp,
            history: [JobRecord.HistoryEntry(status: .created, timestamp: stamp)])
        _ = try await broker.execute(
            [
                .set(key: names.record(id), value: StoredRecord(record: record).bytes, expiry: .after(JobNames.recordLifetime),
                     condition: .always),
                .push([Array(id.utf8)], end: .head, queue: names.queue),
            ], atomically: true)
    }

    /// Calls per command since the server started (`INFO commandstats`).
    static func commandCounts(_ broker: RedisBroker) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        // Lines: cmdstat_lpush:calls=12,usec=…
        for (field, value) in try await broker.serverInfo("commandstats") where field.hasPrefix("cmdstat_") {
            guard let calls = value.split(separator: ",").first, calls.hasPrefix("calls="),
                let count = Int(calls.dropFirst("calls=".count))
            else { continue }
            counts[String(field.dropFirst("cmdstat_".count)), default: 0] += count
        }
        return counts
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in the bytes. The first two bytes are checked before the rest
    /// is compared: the markers begin with `"s`, which is rare in a status message, so the
    /// scan costs about one comparison per byte (the bench's own CPU time is counted).
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard needle.count >= 2 else { return needle.isEmpty || contains(needle[0]) }
        guard needle.count <= count else { return false }
        return withUnsafeBufferPointer { haystack in
            needle.withUnsafeBufferPointer { needle in
                let first = needle[0]
                let second = needle[1]
                var index = 0
                while index + needle.count <= haystack.count {
                    if haystack[index] == first && haystack[index + 1] == second
                        && memcmp(haystack.baseAddress! + index, needle.baseAddress!, needle.count) == 0
                    {
                        return true
                    }
                    index += 1
                }
                return false
            }
        }
    }
}

/// Holds job creation back so that at most `size` jobs are created and not yet done: the bench
/// measures steady throughput with a bounded queue, not how fast an unbounded backlog builds.
///
/// Waiting creations are kept in job order, so that each finished job admits from the front:
/// the window costs the bench no scan and no allocation per job (its CPU time is counted).
final class BacklogWindow: Sendable {
    private struct State {
        var finished = 0
        var waiters: Deque<(job: Int, continuation: CheckedContinuation<Void, Never>)> = []
    }
    private let size: Int
    private let state: Mutex<State>

    init(size: Int) {
        self.size = size
        var state = State()
        state.waiters.reserveCapacity(64)
        self.state = Mutex(state)
    }

    /// Returns once job number `job` (0-based) may be created.
    func admit(_ job: Int) async {
        if state.withLock({ job < $0.finished + size }) { return }
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state in
                if job < state.finished + size { return true }
                // Creators take numbers in order, so this is nearly always the back.
                var position = state.waiters.endIndex
                while position > state.waiters.startIndex, state.waiters[position - 1].job > job { position -= 1 }
                state.waiters.insert((job, continuation), at: position)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    /// Records that `count` jobs are done in all, admitting the creations that waited for it.
    func finished(_ count: Int) {
        let limit = count + size
        while true {
            // One at a time: the usual call admits one creation, and resumes it outside the lock.
            let ready = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.finished = count
                guard let first = state.waiters.first, first.job < limit else { return nil }
                state.waiters.removeFirst()
                return first.continuation
            }
            guard let ready else { return }
            ready.resume()
        }
    }
}

/// Hands out job numbers to the creator tasks.
final class JobCounter: Sendable {
    private let next = Atomic(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}
