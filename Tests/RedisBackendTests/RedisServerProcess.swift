import Foundation
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

    private static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
