import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `switchboard bench relay-floor`: the CPU a bare relay spends per message on this machine, the
/// floor under `bench fanout`'s "gateway CPU/msg".
///
/// One thread reads fixed-size messages from an upstream TCP connection and writes each to one
/// of C downstream connections in turn, with blocking calls and nothing else: no parsing, no
/// framing, no Redis. Another thread feeds it (paced, then as fast as possible) and a third
/// reads the downstream sockets. Only the relay thread's CPU time is counted
/// (`getrusage(RUSAGE_THREAD)`), which on loopback includes the kernel's delivery to the
/// reader, as a gateway's does.
struct RelayFloorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-floor",
        abstract: "CPU per message of a bare TCP relay (read one upstream, write one of C downstreams): the machine's floor.",
        discussion: """
            Compare with `switchboard bench fanout`'s gateway CPU/msg at the same rate and client count: \
            a gateway cannot spend less per message than this relay, which does nothing but the two syscalls.
            """
    )

    @Option(help: "Downstream connections.")
    var clients = 1_000

    @Option(help: "Messages per phase.")
    var messages = 40_000

    @Option(help: "Rate of the paced phase, per second.")
    var rate = 5_000

    @Option(help: "Message size in bytes.")
    var size = 250

    func validate() throws {
        guard clients >= 1, messages >= 1, rate >= 1, size >= 1 else {
            throw ValidationError("--clients, --messages, --rate and --size must be positive")
        }
    }

    func run() throws {
        let listener = try Loopback.listener()
        defer { close(listener.descriptor) }
        var readers: [Int32] = []
        var downstream: [Int32] = []
        for _ in 0..<clients {
            readers.append(try Loopback.connect(to: listener.port))
            downstream.append(try Loopback.accept(listener.descriptor))
        }
        let feed = try Loopback.connect(to: listener.port)
        let upstream = try Loopback.accept(listener.descriptor)
        defer { for descriptor in readers + downstream + [feed, upstream] { close(descriptor) } }

        let phases: [(label: String, paced: Bool)] = [("\(rate)/s", true), ("as fast as possible", false)]
        let total = messages * phases.count
        let phaseStart = DispatchSemaphore(value: 0)
        let (messages, size, rate) = (messages, size, rate)
        let readerThread = Thread { [readers] in Self.drain(readers, bytes: total * size) }
        let feederThread = Thread {
            let message = [UInt8](repeating: UInt8(ascii: "x"), count: size)
            for phase in phases {
                phaseStart.wait()
                let start = DispatchTime.now().uptimeNanoseconds
                for index in 0..<messages {
                    if phase.paced {
                        let due = start + UInt64(index) * 1_000_000_000 / UInt64(rate)
                        let now = DispatchTime.now().uptimeNanoseconds
                        if due > now { usleep(UInt32((due - now) / 1_000)) }
                    }
                    Loopback.writeAll(feed, message)
                }
            }
        }
        readerThread.start()
        feederThread.start()

        var table = BenchTable(
            title: "relay floor: \(messages) messages of \(size) bytes, 1 upstream → \(clients) downstream connections (loopback)",
            headers: ["phase", "relayed", "seconds", "relay CPU/msg"])
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let outgoing = [UInt8](repeating: UInt8(ascii: "x"), count: size)
        var received = 0
        var relayed = 0
        for phase in phases {
            let target = relayed + messages
            let cpuBefore = Self.threadCPUSeconds()
            let started = ContinuousClock.now
            phaseStart.signal()
            while relayed < target {
                let count = buffer.withUnsafeMutableBytes { read(upstream, $0.baseAddress, $0.count) }
                guard count > 0 else { throw ValidationError("the feeder's connection closed early") }
                received += count
                while relayed < target, (relayed + 1) * size <= received {
                    Loopback.writeAll(downstream[relayed % clients], outgoing)
                    relayed += 1
                }
            }
            let cpu = Self.threadCPUSeconds() - cpuBefore
            let elapsed = ContinuousClock.now - started
            table.rows.append([
                phase.label, "\(messages)", String(format: "%.2f", elapsed.seconds),
                String(format: "%.1f µs", cpu / Double(messages) * 1e6),
            ])
        }
        print(table.render())
    }

    /// This thread's user plus system CPU time.
    private static func threadCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(1), &usage)  // RUSAGE_THREAD
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Reads the downstream sockets until `bytes` arrived in all (`poll`: Glibc's module has
    /// no epoll; this thread's cost is not counted).
    private static func drain(_ descriptors: [Int32], bytes: Int) {
        var polled = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var left = bytes
        while left > 0 {
            let ready = poll(&polled, nfds_t(polled.count), 10_000)
            guard ready > 0 else { return }
            for index in polled.indices where polled[index].revents != 0 {
                polled[index].revents = 0
                let count = buffer.withUnsafeMutableBytes { read(polled[index].fd, $0.baseAddress, $0.count) }
                if count > 0 { left -= count }
            }
        }
    }
}

/// Blocking loopback TCP sockets for the relay bench.
private enum Loopback {
    static func listener() throws -> (descriptor: Int32, port: UInt16) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && listen(descriptor, 4_096) == 0
                    && getsockname(descriptor, address, &length) == 0
            }
        }
        guard descriptor >= 0, bound else { throw ValidationError("cannot listen on 127.0.0.1 (errno \(errno))") }
        return (descriptor, UInt16(bigEndian: address.sin_port))
    }

    static func connect(to port: UInt16) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard descriptor >= 0, connected else { throw ValidationError("cannot connect to 127.0.0.1:\(port) (errno \(errno))") }
        noDelay(descriptor)
        return descriptor
    }

    static func accept(_ listener: Int32) throws -> Int32 {
        let descriptor = Glibc.accept(listener, nil, nil)
        guard descriptor >= 0 else { throw ValidationError("accept failed (errno \(errno))") }
        noDelay(descriptor)
        return descriptor
    }

    /// Each message goes out at once, as a gateway's frames do.
    private static func noDelay(_ descriptor: Int32) {
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
