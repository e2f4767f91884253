private import CHiredis
import Broker

#if canImport(Glibc)
import Glibc
#endif

/// The one owner of a hiredis `redisContext`: connects it, frees it in `deinit`. Only the I/O
/// thread of the ``RedisConnection`` that created it ever touches it (hiredis is not
/// thread-safe), so it is deliberately not `Sendable`.
final class HiredisContext {
    private let context: UnsafeMutablePointer<redisContext>
    /// What closed the TLS tunnel under this connection, if it runs over one.
    private let tunnelFault: TunnelFault?

    /// Connects (blocking, bounded by `timeout`); call on an I/O thread only.
    convenience init(host: String, port: Int, timeout: Duration) throws(BrokerError) {
        let interval = Self.interval(timeout)
        try self.init(opened: redisConnectWithTimeout(host, Int32(port), interval), to: "\(host):\(port)", timeout: interval)
        redisEnableKeepAlive(context)
    }

    /// Connects to a Unix domain socket (blocking, bounded by `timeout`); call on an I/O
    /// thread only.
    convenience init(socketPath path: String, timeout: Duration) throws(BrokerError) {
        let interval = Self.interval(timeout)
        try self.init(opened: redisConnectUnixWithTimeout(path, interval), to: "the socket \(path)", timeout: interval)
    }

    /// Takes a context hiredis just connected to `place`, or throws (and frees it) if it did not.
    private init(opened context: UnsafeMutablePointer<redisContext>?, to place: String, timeout: timeval) throws(BrokerError) {
        guard let context else {
            throw BrokerError(.connectionFailed, "redis: cannot allocate a connection to \(place)")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw BrokerError(.connectionFailed, "redis: cannot connect to \(place): \(message)")
        }
        self.context = context
        tunnelFault = nil
        // Blocking handshake commands must not wait forever either.
        redisSetTimeout(context, timeout)
    }

    /// Wraps a ``TLSTunnel``'s end, which hiredis owns (and closes) from now on, with where
    /// the tunnel keeps what closed it; call on an I/O thread only.
    init(tunnelEnd socket: Int32, fault: TunnelFault, timeout: Duration) throws(BrokerError) {
        guard let context = redisConnectFd(socket) else {
            Glibc.close(socket)
            throw BrokerError(.connectionFailed, "redis: cannot allocate a connection")
        }
        self.context = context
        tunnelFault = fault
        redisSetTimeout(context, Self.interval(timeout))
    }

    /// A connection to the server `configuration` names: a Unix socket, TCP, or TLS through a
    /// ``TLSTunnel``.
    static func connect(_ configuration: RedisConfiguration) throws(BrokerError) -> HiredisContext {
        let (host, port, timeout) = (configuration.host, configuration.port, configuration.connectTimeout)
        if let path = configuration.socketPath {
            guard configuration.tls == nil else {
                throw BrokerError(.invalidArgument, "redis: TLS is for TCP; a Unix socket (\(path)) takes none")
            }
            return try HiredisContext(socketPath: path, timeout: timeout)
        }
        guard let tls = configuration.tls else { return try HiredisContext(host: host, port: port, timeout: timeout) }
        let (socket, fault) = try TLSTunnel.open(host: host, port: port, tls: tls, timeout: timeout)
        return try HiredisContext(tunnelEnd: socket, fault: fault, timeout: timeout)
    }

    private static func interval(_ timeout: Duration) -> timeval {
        let milliseconds = max(1, timeout.millisecondsRoundedUp)
        return timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
    }

    deinit {
        redisFree(context)
    }

    var fileDescriptor: Int32 { context.pointee.fd }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private func failure(_ action: String) -> BrokerError {
        let tls = tunnelFault?.description.map { " (TLS: \($0))" } ?? ""
        return BrokerError(.connectionLost, "redis: \(action): \(Self.errorText(context))\(tls)")
    }

    /// One command, waiting for its reply: only for the handshake, before ``makeNonBlocking()``.
    func blockingCommand(_ arguments: [String]) throws(BrokerError) -> RESPValue {
        var encoder = RESPEncoder()
        encoder.append(arguments.map { Array($0.utf8) })
        try append(encoder.bytes)
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
            throw failure("handshake failed")
        }
        defer { freeReplyObject(reply) }
        return Self.value(of: reply.assumingMemoryBound(to: redisReply.self))
    }

    /// Switches to non-blocking I/O for the poll loop.
    func makeNonBlocking() throws(BrokerError) {
        guard chiredis_set_nonblocking(context) == 0 else {
            throw BrokerError(.connectionLost, "redis: cannot make the socket non-blocking (errno \(errno))")
        }
    }

    /// Copies already formatted RESP commands into hiredis's output buffer (handshake only:
    /// afterwards ``RedisConnection`` writes to the socket itself and uses hiredis to read).
    func append(_ bytes: [UInt8]) throws(BrokerError) {
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                redisAppendFormattedCommand(context, chars.baseAddress, chars.count)
            }
        }
        guard status == REDIS_OK else { throw failure("cannot queue a command") }
    }

    /// Reads what the socket holds into hiredis's reader.
    func fill() throws(BrokerError) {
        guard redisBufferRead(context) == REDIS_OK else { throw failure("read failed") }
    }

    /// The next complete reply in the reader, if any.
    func nextReply() throws(BrokerError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &reply) == REDIS_OK else { throw failure("protocol error") }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.value(of: reply.assumingMemoryBound(to: redisReply.self))
    }

    private static func value(of pointer: UnsafePointer<redisReply>) -> RESPValue {
        let reply = pointer.pointee
        func bytes() -> [UInt8] {
            guard let text = reply.str, reply.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: text, count: reply.len))
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .bulk(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(reply.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                if let element = reply.element[index] { elements.append(value(of: element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default: return .null
        }
    }
}
