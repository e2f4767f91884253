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
    /// within `timeout`; returns the socket for hiredis, which owns it from then on.
    ///
    /// Blocks: call on a connection's I/O thread only, never on the cooperative pool.
    static func open(host: String, port: Int, tls: RedisTLS, timeout: Duration) throws(BrokerError) -> Int32 {
        let context: NIOSSLContext
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = try tls.trustRoots()
            if !tls.verifiesCertificate { configuration.certificateVerification = .none }
            context = try NIOSSLContext(configuration: configuration)
        } catch let error as BrokerError {
            throw error
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
                            let (toServer, toHiredis) = Relay.pair()
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
            return hiredisEnd
        } catch {
            deadline.cancel()
            Glibc.close(hiredisEnd)
            if !relayEndHandedOver.done.load(ordering: .relaxed) { Glibc.close(relayEnd) }
            throw BrokerError(.connectionFailed, "redis: TLS connection to \(host):\(port) failed: \(describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case is HandshakeTimeout:
            return "no TLS handshake within the connect timeout (is the port a TLS port?)"
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "the server's certificate is not for this host (\(error))"
        case let error as NIOSSLError:
            if "\(error)".contains("CERTIFICATE_VERIFY_FAILED") {
                return "the server's certificate is not signed by a trusted CA; for a private CA, give its PEM "
                    + "file (--redis-ca-file, RedisTLS.caFile)"
            }
            return "TLS handshake failed: \(error)"
        default:
            return "\(error)"
        }
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
