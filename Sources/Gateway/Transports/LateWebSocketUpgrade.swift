import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Upgrades a WebSocket asked for on a keep-alive connection after other requests: NIO's
/// upgrade handler reads only a connection's first request, and reverse proxies that pool
/// keep-alive connections to the gateway (nginx `keepalive`, Envoy, ALB) send upgrades on
/// reused ones, whose WebSocket clients follow no redirect.
///
/// It sits right after NIO's request decoder, ahead of Hummingbird's handlers, and keeps an
/// upgrade request (`Upgrade` and `Connection: upgrade`) from them. The decoder parses nothing
/// after such a request, so none can follow it. Once the endpoint accepted it and the response
/// before it is completely written, the `101` goes out, the HTTP handlers leave the pipeline,
/// and the WebSocket's handlers take their place, with the bytes that came after the request; a
/// refused upgrade is answered with its error and the connection closed, as on a first request.
///
/// The connection's Hummingbird task stays suspended until the connection closes: Hummingbird
/// ends it only with the channel, so its two `NIOAsyncChannel` handlers stay at the end of the
/// pipeline, past the WebSocket's, where nothing reaches them but the channel going inactive.
final class LateWebSocketUpgrade: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// How the gateway takes an upgrade: the endpoint's verdict (in a task), then its handler.
    struct Upgrades: Sendable {
        var maxFrameSize: Int
        var spawn: @Sendable (@escaping WebSocketWork) -> Bool
        var decide: @Sendable (HTTPRequestHead, any Channel) async -> GatewayChannel.Decision
        /// Installs the connection's handler after the given WebSocket handler.
        var serve: @Sendable (any Channel, WebSocketAcceptance, any ChannelHandler) throws -> Void
    }

    private enum Verdict {
        case accepted(WebSocketAcceptance, responseHeaders: HTTPHeaders)
        case refused(GatewayError, extraHeaders: [(String, String)])
    }

    private enum State {
        /// Requests go on to Hummingbird.
        case forwarding
        /// An upgrade request is held until its verdict, its end and the previous response's end.
        case holding(HTTPRequestHead, requestEnded: Bool, verdict: Verdict?)
        /// Switching protocols or refused: what arrives waits for the WebSocket's handlers.
        case switching
    }

    private let upgrades: Upgrades
    /// Hummingbird's handlers after this one, which leave with it on an upgrade.
    private var httpHandlers: [any RemovableChannelHandler]
    private var state = State.forwarding
    /// Requests handed on whose response has not ended yet.
    private var unanswered = 0
    private var buffered: [NIOAny] = []
    private var context: ChannelHandlerContext?

    init(_ upgrades: Upgrades, httpHandlers: [any RemovableChannelHandler]) {
        self.upgrades = upgrades
        self.httpHandlers = httpHandlers
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .forwarding:
            if case .head(let head) = unwrapInboundIn(data), Self.asksForWebSocket(head) {
                return hold(head, context: context)
            }
            if case .head = unwrapInboundIn(data) { unanswered += 1 }
            context.fireChannelRead(data)
        case .holding(let head, _, let verdict):
            // The held request's body (a handshake has none) is dropped; its end is awaited.
            if case .end = unwrapInboundIn(data) {
                state = .holding(head, requestEnded: true, verdict: verdict)
                proceed()
            }
        case .switching:
            // Bytes the removed decoder passed on: the first WebSocket frames.
            buffered.append(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(unanswered - 1, 0)  // (an answer to a malformed request was not counted)
            if case .holding = state {
                // Once this response is on its way (not from inside its write).
                context.eventLoop.assumeIsolated().execute { self.proceed() }
            }
        }
        context.write(data, promise: promise)
    }

    /// A WebSocket upgrade as NIO's upgrade handler sees one on a first request: `websocket`
    /// among the `Upgrade` protocols, and `Connection: upgrade`. Other upgrades (`h2c`, which
    /// curl offers) go on to Hummingbird, which answers them as plain requests.
    private static func asksForWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "Upgrade"].contains { $0.lowercased() == "websocket" }
            && head.headers[canonicalForm: "Connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// Checks the handshake, then asks the endpoint (in a task), keeping the request meanwhile.
    private func hold(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .holding(head, requestEnded: false, verdict: nil)
        let upgrader = NIOTypedWebSocketServerUpgrader<Void>(
            maxFrameSize: upgrades.maxFrameSize,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededVoidFuture() })
        let channel = context.channel
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let upgrades = self.upgrades
        upgrader.buildUpgradeResponse(
            channel: channel, upgradeRequest: head,
            initialResponseHeaders: HTTPHeaders([("Upgrade", "websocket"), ("Connection", "upgrade")])
        )
        .hop(to: eventLoop).assumeIsolated().whenComplete { result in
            guard case .success(let responseHeaders) = result else {
                // As on a first request (`MalformedFirstRequest`): 426 for another version.
                let versions = head.headers["Sec-WebSocket-Version"]
                let refusal =
                    versions.isEmpty || versions == ["13"]
                    ? GatewayError.badRequest("invalid WebSocket handshake")
                    : GatewayError(.init(code: 426, reasonPhrase: "Upgrade Required"), "unsupported WebSocket version")
                return self.decided(.refused(refusal, extraHeaders: [("Sec-WebSocket-Version", "13")]))
            }
            let started = upgrades.spawn {
                let decision = await upgrades.decide(head, channel)
                eventLoop.execute {
                    switch decision {
                    case .accepted(let acceptance):
                        bound.value.decided(.accepted(acceptance, responseHeaders: responseHeaders))
                    case .refused(let error):
                        bound.value.decided(.refused(error, extraHeaders: []))
                    }
                }
            }
            if !started {
                self.decided(.refused(GatewayError(.serviceUnavailable, "server shutting down"), extraHeaders: []))
            }
        }
    }

    private func decided(_ verdict: Verdict) {
        guard case .holding(let head, let requestEnded, nil) = state else { return }
        state = .holding(head, requestEnded: requestEnded, verdict: verdict)
        proceed()
    }

    /// Answers the held request once it ended, has its verdict, and the response before it ended.
    private func proceed() {
        guard let context, case .holding(_, true, let verdict) = state, unanswered == 0 else { return }
        stopIdleTimeout(context)
        guard let verdict else { return }
        state = .switching
        switch verdict {
        case .refused(let error, let extraHeaders):
            answerAndClose(context, self, error, extraHeaders: extraHeaders)
        case .accepted(let acceptance, let responseHeaders):
            do {
                try switchProtocols(acceptance, responseHeaders: responseHeaders, context: context)
            } catch {
                context.close(promise: nil)
            }
        }
    }

    /// Takes Hummingbird's connection-state handler out once the held upgrade request has
    /// been read whole and every response before it has ended. The held request never reaches
    /// that handler, so it would count the connection idle while the endpoint decides (on a
    /// loaded machine that outlasted a 300 ms idle timeout) and close it. A request still
    /// arriving keeps the handler, and with it the idle timeout's guard against one that never
    /// ends. What the handler would still do, closing on graceful shutdown,
    /// ``userInboundEventTriggered(context:event:)`` does.
    private func stopIdleTimeout(_ context: ChannelHandlerContext) {
        guard let index = httpHandlers.firstIndex(where: { $0 is HTTPConnectionStateHandler }) else { return }
        context.pipeline.syncOperations.removeHandler(httpHandlers.remove(at: index), promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, case .holding = state,
            !httpHandlers.contains(where: { $0 is HTTPConnectionStateHandler })
        {
            // As the connection-state handler closes a connection with no request in progress.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// What NIO's upgrade handler does for a first request, here: the decoder leaves (handing
    /// on the bytes after the request), the `101` goes out, the encoder and Hummingbird's
    /// handlers leave, the WebSocket's handlers come, and the bytes kept meanwhile go to them.
    private func switchProtocols(
        _ acceptance: WebSocketAcceptance, responseHeaders: HTTPHeaders, context: ChannelHandlerContext
    ) throws {
        let pipeline = context.pipeline.syncOperations
        pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self), promise: nil)
        let response = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: responseHeaders)
        context.writeAndFlush(wrapOutboundOut(.head(response)), promise: nil)
        pipeline.removeHandler(try pipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
        for handler in httpHandlers { pipeline.removeHandler(handler, promise: nil) }
        let encoder = WebSocketFrameEncoder()
        let decoder = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: upgrades.maxFrameSize))
        let protocolErrors = WebSocketProtocolErrorHandler()
        try pipeline.addHandler(encoder, position: .after(self))
        try pipeline.addHandler(decoder, position: .after(encoder))
        try pipeline.addHandler(protocolErrors, position: .after(decoder))
        try upgrades.serve(context.channel, acceptance, protocolErrors)
        let waiting = buffered
        buffered = []
        for data in waiting { context.fireChannelRead(data) }
        if !waiting.isEmpty { context.fireChannelReadComplete() }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
