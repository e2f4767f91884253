import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Gives a refused WebSocket upgrade its real status and JSON body.
///
/// hummingbird-websocket answers every refused upgrade with an empty `400`. The `/ws` route
/// knows better (a bad token is `401 {"error":"invalid token"}`), so when it refuses an upgrade
/// attempt it files the refusal under the connection, and this handler, which sits in the
/// pipeline of every connection that was not upgraded, rewrites that `400` into the filed
/// response. Any other response passes through untouched.
final class UpgradeRefusalHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private var pendingBody: ByteBuffer?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status == .badRequest:
            if let refusal = UpgradeRefusals.shared.take(for: context.channel) {
                head.status = refusal.status
                head.headerFields[.contentType] = "application/json; charset=utf-8"
                head.headerFields[.contentLength] = String(refusal.body.readableBytes)
                pendingBody = refusal.body
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end(let trailers):
            if let body = pendingBody {
                pendingBody = nil
                context.write(wrapOutboundOut(.body(body)), promise: nil)
            }
            context.write(wrapOutboundOut(.end(trailers)), promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}

/// Refusals filed by the `/ws` route for the connection's pending upgrade response.
final class UpgradeRefusals: Sendable {
    struct Refusal: Sendable {
        var status: HTTPResponse.Status
        var body: ByteBuffer
    }

    static let shared = UpgradeRefusals()
    private let filed = Mutex<[ObjectIdentifier: Refusal]>([:])

    /// Files `error` for `channel`; forgotten when read or when the connection closes.
    func file(_ error: GatewayError, for channel: any Channel) {
        var body = ByteBuffer()
        body.writeString(#"{"error":"# + JSONText.quoted(error.message) + "}")
        let key = ObjectIdentifier(channel)
        filed.withLock { $0[key] = Refusal(status: error.status, body: body) }
        channel.closeFuture.whenComplete { _ in _ = self.filed.withLock { $0.removeValue(forKey: key) } }
    }

    func take(for channel: any Channel) -> Refusal? {
        filed.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// How many refusals wait (for tests: none may linger).
    var count: Int { filed.withLock { $0.count } }
}

extension GatewayRequestContext {
    /// Makes a refused WebSocket upgrade on this connection answer with `error`'s status and
    /// JSON body instead of a bare `400` (for transports that add their own `router.ws` routes,
    /// such as Socket.IO). Call it from `shouldUpgrade` before throwing `error`.
    public func refuseUpgrade(with error: GatewayError) {
        UpgradeRefusals.shared.file(error, for: channel)
    }
}
