import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process (redis-server, redis-cli) started with `posix_spawnp`, not Foundation's
/// `Process`: `Process.run()` on Linux reads 256 bytes of every `/proc/self/fd` entry's name
/// whatever its length, and crashed full test runs (a test process holds many descriptors) in
/// about one run in fifteen when an entry ended a page (swift-corelibs-foundation PR #5472).
///
/// The child gets only standard input, output and error (every other descriptor of the test
/// process is closed in it): a server must not hold another test's sockets or pipes open.
final class ChildProcess: Sendable {
    let pid: pid_t
    /// The exit status once reaped: a pid is waited for once.
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `arguments[0]` (looked up on `PATH`) with `arguments`, its standard output on
    /// `output` (nil: /dev/null) and its standard error on /dev/null.
    init(_ arguments: [String], output: Int32? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        _ = Self.addCloseFrom(&actions, 3)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EINVAL) }
        self.pid = pid
    }

    /// Sends `signal` unless the process has been reaped (its pid may be another's by then).
    func signal(_ signal: Int32) {
        exitStatus.withLock { status in
            if status == nil { _ = kill(pid, signal) }
        }
    }

    /// The exit status if the process has ended (reaping it), else `nil`; never blocks.
    func exited() -> Int32? {
        exitStatus.withLock { status in
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
            }
            return status
        }
    }

    /// Waits for the process to end without blocking a pool thread; returns its exit code
    /// (128 + the signal's number if a signal ended it).
    @discardableResult
    func waitForExit() async -> Int32 {
        while true {
            if let raw = exited() { return Self.code(of: raw) }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Runs `arguments` to the end; returns what it wrote to standard output and its exit code.
    /// Blocks the calling thread (redis-cli answers within milliseconds).
    static func output(of arguments: [String]) throws -> (text: String, code: Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw POSIXError(.EMFILE) }
        // Not inherited by children spawned meanwhile (they close it anyway; see addCloseFrom).
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        let child: ChildProcess
        do {
            child = try ChildProcess(arguments, output: ends[1])
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
        close(ends[1])
        defer { close(ends[0]) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(ends[0], $0.baseAddress, $0.count) }
            if count > 0 {
                output += chunk[..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var raw: Int32 = 0
        while waitpid(child.pid, &raw, 0) < 0 && errno == EINTR {}
        child.exitStatus.withLock { $0 = raw }
        return (String(decoding: output, as: UTF8.self), code(of: raw))
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which the Glibc
    /// module does not export: closes every descriptor from the given one on in the child.
    private static let addCloseFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            fatalError("glibc 2.34 or later is needed (posix_spawn_file_actions_addclosefrom_np)")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// A `waitpid` status as a shell shows it: the exit code, or 128 + the signal's number.
    private static func code(of raw: Int32) -> Int32 {
        raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }
}
