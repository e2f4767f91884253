import Broker
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TLS connection to Redis that hiredis, which has no TLS, uses as a plain socket.
///
/// hiredis gets one end of a Unix socket pair; an NIO channel on the other end relays bytes
/// to and from a TLS channel to the server, on one event loop of NIO's shared group. The rest
/// of the connection (poll loop, auto-pipelining, timeouts) is the same as over TCP. Closing
/// hiredis's end (`redisFree`) closes the TLS connection; the server closing it, or a TLS
/// error, closes hiredis's end, which its poll loop sees as a lost connection.
enum TLSTunnel {
    /// Connects to `host:port` over TLS and completes the handshake, certificate verified, all
    /// within `timeout`; returns the socket for hiredis, which owns it from then on, and where
    /// the TLS errors that close the tunnel later are kept (a server that refuses the client's
    /// certificate says so only after the handshake, TLS 1.3's way).
    ///
    /// Blocks: call on a connection's I/O thread only, never on the cooperative pool.
    static func open(
        host: String, port: Int, tls: RedisTLS, timeout: Duration
    ) throws(BrokerError) -> (socket: Int32, fault: TunnelFault) {
        let configuration = try tls.clientConfiguration()
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw BrokerError(.connectionFailed, "redis: cannot set up TLS: \(error)")
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw BrokerError(.connectionFailed, "redis: socketpair failed (errno \(errno))")
        }
        let (hiredisEnd, relayEnd) = (pair[0], pair[1])
        // SNI and name checks take a host name; for an IP address NIOSSL matches the
        // certificate's IP addresses against the peer's address instead.
        let serverName = isIPAddress(host) ? nil : host
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let handshake = eventLoop.makePromise(of: Void.self)
        let relayEndHandedOver = Handover()
        let fault = TunnelFault()
        let limit = TimeAmount.milliseconds(timeout.millisecondsRoundedUp)
        let tlsChannel = ClientBootstrap(group: eventLoop)
            .connectTimeout(limit)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                    try sync.addHandler(HandshakeWatch(handshake))
                }
            }
            .connect(host: host, port: port)
        // The TCP connect has its own timeout; this bounds the handshake as well.
        let deadline = eventLoop.scheduleTask(in: limit) {
            handshake.fail(HandshakeTimeout())
        }
        tlsChannel.whenFailure { handshake.fail($0) }
        // One chain of futures, not a wait per step: the relay must be in the TLS channel's
        // pipeline in the same event-loop turn as the handshake's end. A server that refuses
        // the client's certificate sends its alert right after (TLS 1.3); met by no relay, it
        // would close the TLS channel unseen and leave hiredis waiting for a reply.
        let relay = tlsChannel.flatMap { channel in
            handshake.futureResult.flatMapError { error in
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }.flatMap {
                // From here the relay end is the relay channel's, closed with it.
                relayEndHandedOver.done.store(true, ordering: .relaxed)
                return ClientBootstrap(group: channel.eventLoop)
                    .channelInitializer { local in
                        local.eventLoop.makeCompletedFuture {
                            let (toServer, toHiredis) = Relay.pair(fault: fault)
                            try local.pipeline.syncOperations.addHandler(toServer)
                            try channel.pipeline.syncOperations.addHandler(toHiredis)
                        }
                    }
                    .withConnectedSocket(relayEnd)
                    .flatMapError { error in
                        channel.close(promise: nil)
                        return channel.eventLoop.makeFailedFuture(error)
                    }
            }
        }
        do {
            _ = try relay.wait()
            deadline.cancel()
            return (hiredisEnd, fault)
        } catch {
            deadline.cancel()
            Glibc.close(hiredisEnd)
            if !relayEndHandedOver.done.load(ordering: .relaxed) { Glibc.close(relayEnd) }
            throw BrokerError(.connectionFailed, "redis: TLS connection to \(host):\(port) failed: \(describe(error))")
        }
    }

    /// What a TLS failure means for the operator; BoringSSL's reason names are matched in the
    /// error's text (NIOSSLError during the handshake, BoringSSLError after it).
    static func describe(_ error: any Error) -> String {
        if error is HandshakeTimeout { return "no TLS handshake within the connect timeout (is the port a TLS port?)" }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "the server's certificate is not for this host (\(error))"
        }
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the server's certificate is not signed by a trusted CA; for a private CA, give its PEM "
                + "file (--redis-ca-file, RedisTLS.caFile)"
        }
        if text.contains("CERTIFICATE_REQUIRED") {
            return "the server asks for a client certificate (--redis-cert-file and --redis-key-file, "
                + "RedisTLS.certificateFile and keyFile)"
        }
        if text.contains("ALERT_UNKNOWN_CA") || text.contains("ALERT_BAD_CERTIFICATE")
            || text.contains("ALERT_CERTIFICATE_UNKNOWN")
        {
            return "the server refused the client certificate (is it signed by a CA the server trusts?): \(text)"
        }
        return error is NIOSSLError || error is BoringSSLError ? "TLS failed: \(text)" : text
    }

    private static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    private struct HandshakeTimeout: Error {}

    private final class Handover: Sendable {
        let done = Atomic(false)
    }
}

/// The first error that closed a ``TLSTunnel`` after its handshake, told when hiredis finds the
/// connection gone (it sees only the close).
final class TunnelFault: Sendable {
    private let first = Mutex<String?>(nil)

    func record(_ error: any Error) {
        first.withLock { $0 = $0 ?? TLSTunnel.describe(error) }
    }

    var description: String? { first.withLock { $0 } }
}

/// Completes a promise when the TLS handshake is done, or fails it with the first error.
private final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<Void>

    init(_ promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if case TLSUserEvent.handshakeCompleted = event {
            promise.succeed()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
