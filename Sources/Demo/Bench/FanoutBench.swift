import ArgumentParser
import Broker
import Foundation
import Gateway
import HummingbirdWSClient
import Logging
import NIOCore
import NIOPosix
import RedisBackend
import Synchronization

/// `switchboard bench fanout`: status updates published on Redis reaching many authenticated
/// WebSocket clients through a gateway process.
struct FanoutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "Status updates on Redis → a gateway process → C WebSocket clients: loss, latency, CPU, memory.",
        discussion: """
            Starts `switchboard serve --redis` as a child process (so its CPU time and memory are its own), \
            connects C WebSocket clients (each a different user), then publishes M status updates on \
            agent:rebalance:status, first at a fixed rate and then as fast as possible, each for one of the \
            users in turn. Latency runs from just before PUBLISH to the client's receipt, on one monotonic clock.
            """
    )

    @Option(help: "Redis URL (default: env SWITCHBOARD_TEST_REDIS_URL, REDIS_URL, or redis://127.0.0.1:6379).")
    var redis: String?

    @Option(help: "WebSocket clients, each a different user.")
    var clients = 1_000

    @Option(help: "Status updates per phase.")
    var messages = 50_000

    @Option(help: "Publish rate of the fixed-rate phase, per second.")
    var rate = 5_000

    @Option(help: "Concurrent publishers.")
    var publishers = 32

    @Option(help: "The gateway's --status-lanes (default: serve's default).")
    var statusLanes: Int?

    @Option(name: .customLong("protocol"), help: "Client protocol: websocket (/ws) or socketio (/socket.io/, WebSocket transport).")
    var clientProtocol: FanoutProtocol = .websocket

    func validate() throws {
        guard clients >= 1, messages >= 1, rate >= 1, publishers >= 1 else {
            throw ValidationError("--clients, --messages, --rate and --publishers must be positive")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let url = redis ?? environment["SWITCHBOARD_TEST_REDIS_URL"] ?? environment["REDIS_URL"] ?? "redis://127.0.0.1:6379"
        let secret = "fanout-bench-secret-0123456789abcdefghijkl"
        let port = try await FanoutGateway.freePort()
        let gateway = try FanoutGateway.start(redis: url, port: port, secret: secret, statusLanes: statusLanes)
        defer { gateway.stop() }
        try await FanoutGateway.waitUntilListening(port: port)

        var quiet = Logger(label: "bench.fanout")
        quiet.logLevel = .critical
        let logger = quiet
        let authority = try await TokenAuthority(secret: secret)
        let recorder = FanoutRecorder(expected: messages * 2)
        let publisher = try RedisBroker(url: url, logger: logger)
        defer { publisher.shutdown() }

        let rssBefore = gateway.residentBytes()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                let token = try await authority.issue(userId: "fan-\(client)", lifetime: .seconds(3_600))
                let socketIO = clientProtocol == .socketio
                let path = socketIO ? "/socket.io/?EIO=4&transport=websocket&token=\(token)" : "/ws?token=\(token)"
                group.addTask {
                    try await WebSocketClient.connect(
                        url: "ws://127.0.0.1:\(port)\(path)", configuration: .init(maxFrameSize: 1 << 16),
                        logger: logger
                    ) { inbound, outbound, _ in
                        // Socket.IO: connect the default namespace (token from the URL), answer pings.
                        if socketIO { try await outbound.write(.text("40")) }
                        for try await frame in inbound.messages(maxSize: 1 << 16) {
                            guard case .text(let text) = frame else { continue }
                            if socketIO, text == "2" {
                                try await outbound.write(.text("3"))
                                continue
                            }
                            recorder.receive(text, at: DispatchTime.now().uptimeNanoseconds)
                        }
                    }
                }
            }
            try await recorder.waitForConnections(clients, timeout: .seconds(120))
            // Let the gateway settle (buffers, lazily made structures) before reading its memory.
            try await Task.sleep(for: .seconds(1))
            let rssConnected = gateway.residentBytes()
            // The router must be listening before the first update.
            try await Task.sleep(for: .milliseconds(200))

            var table = BenchTable(
                title: "fanout: \(messages) status updates to \(clients) \(clientProtocol.label) clients through one gateway (\(url))",
                headers: ["phase", "sent", "delivered", "lost", "delivery rate", "p50", "p99", "max", "gateway CPU/msg"])
            for (phase, paced) in [("\(rate)/s", true), ("as fast as possible", false)] {
                recorder.reset()
                let cpuBefore = gateway.cpuSeconds()
                let started = ContinuousClock.now
                try await publish(
                    messages, phase: phase, paced: paced, clients: clients, on: publisher)
                let delivered = await recorder.waitForDeliveries(messages, idle: .seconds(5))
                let elapsed = ContinuousClock.now - started
                let cpu = gateway.cpuSeconds() - cpuBefore
                let latencies = recorder.latencies().sorted()
                func percentile(_ p: Double) -> String {
                    guard !latencies.isEmpty else { return "-" }
                    let index = min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)
                    return Self.format(nanoseconds: latencies[max(0, index)])
                }
                table.rows.append([
                    phase, "\(messages)", "\(delivered)", "\(messages - delivered)",
                    formatRate(Double(delivered) / elapsed.seconds), percentile(0.5), percentile(0.99),
                    latencies.last.map(Self.format(nanoseconds:)) ?? "-",
                    delivered > 0 ? String(format: "%.1f µs", cpu / Double(delivered) * 1e6) : "-",
                ])
            }
            print(table.render())
            let perConnection = Double(rssConnected - rssBefore) / Double(clients)
            print(
                String(
                    format: "gateway memory: %.1f MiB before clients, %.1f MiB with %d idle clients: %.1f KiB per connection",
                    Double(rssBefore) / 1_048_576, Double(rssConnected) / 1_048_576, clients, perConnection / 1024))
            group.cancelAll()
        }
    }

    /// Publishes `count` updates from `publishers` concurrent tasks; paced at `rate` when asked.
    private func publish(_ count: Int, phase: String, paced: Bool, clients: Int, on broker: RedisBroker) async throws {
        let next = TicketCounter()
        let start = DispatchTime.now().uptimeNanoseconds
        let interval = 1_000_000_000 / UInt64(rate)
        let channel = JobNames().statusChannel
        // Job ids unique to this run: a status already routed for an id (by an earlier run on
        // the same Redis) would rightly be dropped as a duplicate and counted as lost here.
        let tag = (paced ? "p" : "f") + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<publishers {
                group.addTask {
                    while true {
                        let index = next.take()
                        guard index < count else { return }
                        if paced {
                            let due = start + UInt64(index) * interval
                            let now = DispatchTime.now().uptimeNanoseconds
                            if due > now { try await Task.sleep(for: .nanoseconds(Int64(due - now))) }
                        }
                        let sentAt = DispatchTime.now().uptimeNanoseconds
                        let message =
                            #"{"jobId":"fan-\#(tag)-\#(index)","status":"processing","userId":"fan-\#(index % clients)","# +
                            #""result":{"t":\#(sentAt)}}"#
                        _ = try await broker.publish(Array(message.utf8), to: channel)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func format(nanoseconds: UInt64) -> String {
        let value = Double(nanoseconds)
        if value >= 1e9 { return String(format: "%.2f s", value / 1e9) }
        if value >= 1e6 { return String(format: "%.2f ms", value / 1e6) }
        return String(format: "%.0f µs", value / 1e3)
    }
}

/// What the bench clients speak.
enum FanoutProtocol: String, ExpressibleByArgument, CaseIterable {
    /// The plain WebSocket at `/ws`.
    case websocket
    /// Socket.IO at `/socket.io/`, on its WebSocket transport.
    case socketio

    var label: String { self == .websocket ? "WebSocket" : "Socket.IO" }
}

/// Hands out message indexes to concurrent publishers.
final class TicketCounter: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}

/// What the clients saw: connections, deliveries and their latencies.
final class FanoutRecorder: Sendable {
    private struct State {
        var connected = 0
        var delivered = 0
        var latencies: [UInt64] = []
    }
    private let state: Mutex<State>

    init(expected: Int) {
        var initial = State()
        initial.latencies.reserveCapacity(expected)
        state = Mutex(initial)
    }

    func receive(_ text: String, at now: UInt64) {
        if text.hasPrefix(#"{"type":"connected""#) || text.hasPrefix(#"40{"sid""#) {
            state.withLock { $0.connected += 1 }
            return
        }
        guard text.hasPrefix(#"{"type":"rebalance:processing""#) || text.hasPrefix(#"42["rebalance:processing""#),
            let sentAt = Self.sentAt(in: text)
        else { return }
        state.withLock { state in
            state.delivered += 1
            state.latencies.append(now >= sentAt ? now - sentAt : 0)
        }
    }

    /// The publish time carried as `"result":{"t":<ns>}`.
    private static func sentAt(in text: String) -> UInt64? {
        guard let range = text.range(of: #""t":"#) else { return nil }
        return UInt64(text[range.upperBound...].prefix { $0.isNumber })
    }

    func reset() { state.withLock { $0.delivered = 0; $0.latencies.removeAll(keepingCapacity: true) } }
    func latencies() -> [UInt64] { state.withLock { $0.latencies } }

    func waitForConnections(_ count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ $0.connected }) < count {
            guard ContinuousClock.now < deadline else {
                throw ValidationError("only \(state.withLock { $0.connected }) of \(count) clients connected")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until `count` arrived, or nothing arrived for `idle`; returns how many arrived.
    func waitForDeliveries(_ count: Int, idle: Duration) async -> Int {
        var last = -1
        var lastChange = ContinuousClock.now
        while true {
            let delivered = state.withLock { $0.delivered }
            if delivered >= count { return delivered }
            if delivered != last {
                last = delivered
                lastChange = .now
            } else if ContinuousClock.now - lastChange > idle {
                return delivered
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The gateway under test, as a child process of the bench.
struct FanoutGateway {
    let process: Process

    static func start(redis: String, port: Int, secret: String, statusLanes: Int?) throws -> FanoutGateway {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = [
            "serve", "--redis", redis, "--port", "\(port)", "--jwt-secret", secret, "--outbound-capacity", "1024",
            "--log-level", "error",
        ] + (statusLanes.map { ["--status-lanes", "\($0)"] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return FanoutGateway(process: process)
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// User plus system CPU time of the gateway process so far (`/proc/<pid>/stat`).
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident memory of the gateway process (`VmRSS`).
    func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kibibytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kibibytes * 1024
        }
        return 0
    }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    static func waitUntilListening(port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ValidationError("the gateway did not listen on port \(port) within 30 s")
    }
}
