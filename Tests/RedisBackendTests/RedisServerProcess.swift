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
    private var process: Process?
    private let directory: URL

    init() throws {
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-fault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        if let process, process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
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

    func start(_ extraArguments: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + extraArguments
        // Not the test process's own output: a server left running by a crashed test run would
        // hold `swift test`'s pipe open, and `swift test` would wait for it for ever.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try Self.spawn(process)
        self.process = process
    }

    /// Foundation's `Process.run()` is not safe to call from several threads at once on Linux
    /// (a parallel test run crashed in it, in a `memmove` of the child's arguments): spawns
    /// take turns.
    private static let spawning = NSLock()

    private static func spawn(_ process: Process) throws {
        spawning.lock()
        defer { spawning.unlock() }
        try process.run()
    }

    /// `CONFIG SET` with redis-cli (the broker speaks only its own commands).
    func configure(_ parameters: [String]) throws {
        _ = try cli(["CONFIG", "SET"] + parameters)
    }

    /// Runs a command with redis-cli against this server; returns what it printed.
    func cli(_ arguments: [String]) throws -> String {
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cli.arguments = ["redis-cli", "-p", "\(port)"] + arguments
        let output = Pipe()
        cli.standardOutput = output
        try Self.spawn(cli)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        cli.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// SIGSTOP / SIGCONT: the server hangs (connections stay open, nothing answers) and resumes.
    func pause() { process.map { _ = Glibc.kill($0.processIdentifier, SIGSTOP) } }
    func resume() { process.map { _ = Glibc.kill($0.processIdentifier, SIGCONT) } }

    /// SIGKILL: the server dies without closing anything politely, like a crash.
    func kill() async {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        // Reap it without blocking a pool thread: poll `isRunning` (exit comes within ms).
        while process.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
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
