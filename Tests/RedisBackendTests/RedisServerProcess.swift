import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A redis-server of the test's own, on a free loopback port, without persistence: the fault
/// test kills it (SIGKILL) and starts it again on the same port.
final class RedisServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the test task that owns this object.
    let port: Int
    private var process: ChildProcess?
    private let directory: URL

    init() throws {
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-fault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        if let process, process.exited() == nil {
            process.signal(SIGKILL)
            process.signal(SIGCONT)  // a paused server dies too
        }
        try? FileManager.default.removeItem(at: directory)
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Where ``startListeningOnSocket()`` has the server listen.
    var socketPath: String { directory.appendingPathComponent("redis.sock").path }

    /// Starts the server listening on ``socketPath`` as well as on its port (redis-cli and
    /// ``cli(_:)`` keep using the port).
    func startListeningOnSocket() throws {
        try start(["--unixsocket", socketPath, "--unixsocketperm", "700"])
    }

    static var isAvailable: Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/redis-server")
        }
    }

    /// Starts the server; its own output goes to /dev/null, not the test process's: a server
    /// left running by a crashed test run would hold `swift test`'s pipe open, and `swift
    /// test` would wait for it for ever.
    func start(_ extraArguments: [String] = []) throws {
        process = try ChildProcess(
            [
                "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--logfile", directory.appendingPathComponent("redis.log").path,
            ] + extraArguments)
    }

    /// `CONFIG SET` with redis-cli (the broker speaks only its own commands).
    func configure(_ parameters: [String]) throws {
        _ = try cli(["CONFIG", "SET"] + parameters)
    }

    /// Runs a command with redis-cli against this server; returns what it printed.
    func cli(_ arguments: [String]) throws -> String {
        try ChildProcess.output(of: ["redis-cli", "-p", "\(port)"] + arguments).text
    }

    /// SIGSTOP / SIGCONT: the server hangs (connections stay open, nothing answers) and resumes.
    func pause() { process?.signal(SIGSTOP) }
    func resume() { process?.signal(SIGCONT) }

    /// SIGKILL: the server dies without closing anything politely, like a crash.
    func kill() async {
        guard let process else { return }
        process.signal(SIGKILL)
        await process.waitForExit()  // reaped without blocking a pool thread
        self.process = nil
    }

    /// Ports given to servers of this run so far.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A port nothing listens on and no other server of this run was given, below the kernel's
    /// ephemeral range (32768–60999 by default). A port found by binding port 0 comes from that
    /// range, where outgoing connections take their local ports too: one of the many a test run
    /// opens could hold it when the server starts, or starts again after a kill, and the server
    /// could not listen.
    private static func freePort() throws -> Int {
        for _ in 0..<1_000 {
            let port = Int.random(in: 20_000..<32_768)
            guard handedOut.withLock({ $0.insert(port).inserted }), canListen(on: port) else { continue }
            return port
        }
        throw POSIXError(.EADDRINUSE)
    }

    private static func canListen(on port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
