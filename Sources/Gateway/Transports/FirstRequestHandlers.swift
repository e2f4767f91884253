import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOWebSocket

// The handlers that guard a connection until its first request is parsed: before that, no
// Hummingbird handler is in the pipeline to answer anything.

/// Notes a connection's first request head on its way to NIO's upgrade handler, so that the
/// choice made when NIO finds it is no upgrade can depend on it; then leaves the pipeline.
///
/// Until then it also keeps the deadline of that head: a connection that sends nothing, or its
/// head too slowly, is answered `408` and closed (nothing else would ever time it out).
final class FirstRequestPeek: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let seen: NIOLoopBoundBox<HTTPRequestHead?>
    private let timeout: Duration
    private var deadline: Scheduled<Void>?

    init(_ seen: NIOLoopBoundBox<HTTPRequestHead?>, timeout: Duration) {
        self.seen = seen
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startDeadline(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startDeadline(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        seen.value = head
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Graceful shutdown: a connection with no request yet has nothing to finish, so it is
    /// closed now. Nothing else in the pipeline answers the server's quiesce event before the
    /// first request, so such a connection (a browser's preconnected socket, a health checker
    /// that connected and waits) held shutdown until its head deadline, 20 s.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func startDeadline(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .init(timeout)) {
            self.deadline = nil
            answerAndClose(
                context, self, GatewayError(.init(code: 408, reasonPhrase: "Request Timeout"), "no complete request in time"))
        }
    }
}

/// Answers a first request that does not parse (a garbage request line, headers over the
/// limits, both Content-Length and Transfer-Encoding) with a JSON 400 and closes; and a
/// WebSocket handshake NIO's upgrader refused (no `Sec-WebSocket-Key`, a version other than 13)
/// with 400, or 426 with `Sec-WebSocket-Version: 13` for another version (RFC 6455 §4.4).
///
/// Until the first request is parsed, no Hummingbird handler is there to do it: the upgrade
/// handler waits for a request head that never comes, and without this the connection (and
/// the task awaiting its negotiation) stayed open indefinitely with nothing sent back; a
/// refused handshake got the connection closed without a word.
/// Removed once the first request was parsed; later parse errors are Hummingbird's.
final class MalformedFirstRequest: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let firstRequest: NIOLoopBoundBox<HTTPRequestHead?>

    init(_ firstRequest: NIOLoopBoundBox<HTTPRequestHead?>) {
        self.firstRequest = firstRequest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            let error =
                parserError == .headerOverflow
                ? GatewayError(.init(code: 431, reasonPhrase: "Request Header Fields Too Large"), "request headers too large")
                : GatewayError.badRequest("malformed HTTP request")
            return answerAndClose(context, self, error)
        }
        // Only a malformed handshake: a refusal of ours (`.unsupportedWebSocketTarget`) is
        // answered with its own status by the negotiation.
        if let upgradeError = error as? NIOWebSocketUpgradeError, upgradeError == .invalidUpgradeHeader {
            let versions = firstRequest.value?.headers["Sec-WebSocket-Version"] ?? []
            let refusal =
                versions.isEmpty || versions == ["13"]
                ? GatewayError.badRequest("invalid WebSocket handshake")
                : GatewayError(.init(code: 426, reasonPhrase: "Upgrade Required"), "unsupported WebSocket version")
            return answerAndClose(context, self, refusal, extraHeaders: [("Sec-WebSocket-Version", "13")])
        }
        context.fireErrorCaught(error)
    }
}

/// Answers `error` as a JSON response from a handler that sits where NIO's HTTP/1 encoder takes
/// its writes (before any request was handed on), then closes the connection.
func answerAndClose<Handler: ChannelInboundHandler>(
    _ context: ChannelHandlerContext, _ handler: Handler, _ error: GatewayError, extraHeaders: [(String, String)] = []
) where Handler.OutboundOut == HTTPServerResponsePart {
    let body = error.jsonBody
    var headers = HTTPHeaders(extraHeaders)
    headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
    headers.add(name: "Content-Length", value: String(body.readableBytes))
    headers.add(name: "Connection", value: "close")
    let status = HTTPResponseStatus(statusCode: error.status.code, reasonPhrase: error.status.reasonPhrase)
    context.write(handler.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    context.write(handler.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
    context.writeAndFlushThenClose(handler.wrapOutboundOut(.end(nil)))
}
