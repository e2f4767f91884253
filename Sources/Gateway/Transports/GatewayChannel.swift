import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The gateway's connections: HTTP/1.1 for the API and the page, WebSocket upgrades to the
/// gateway's ``WebSocketEndpoint``s, and Server-Sent Events streams.
///
/// Hummingbird serves each connection from a task. An HTTP connection ends and its task with
/// it; an upgraded WebSocket is handed to a ``WebSocketConnection`` in the channel pipeline, and
/// a connection whose first request is `GET /api/v1/events` to an ``EventStreamConnection``,
/// and their tasks end at once, so thousands of idle clients hold no task at all (a WebSocket
/// upgraded after other requests keeps its task: see ``LateWebSocketUpgrade``). A refused upgrade
/// is answered with the endpoint's own status and JSON body (`401 {"error":"invalid token"}`),
/// not a bare `400`.
struct GatewayChannel: ServerChildChannel, HTTPChannelHandler {
    /// What the upgrade negotiation ended with.
    enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade was asked for and refused: answer with this error and close.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, GatewayError)
        /// Served by the pipeline from now on (a WebSocket, an event stream).
        case servedByPipeline
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// What the upgrade check decided, kept for the pipeline set-up that follows.
    enum Decision: Sendable {
        case accepted(WebSocketAcceptance)
        case refused(GatewayError)
    }

    let responder: HTTPChannelHandler.Responder
    let endpoints: [WebSocketEndpoint]
    let http1: HTTP1Channel.Configuration
    let requestHeadTimeout: Duration
    let maxFrameSize: Int
    let watchdog: ConnectionWatchdog
    let spawn: @Sendable (@escaping WebSocketWork) -> Bool
    /// Makes the handler of an event stream (`GET /api/v1/events` as a connection's first request).
    let makeEventStream: @Sendable () -> EventStreamConnection

    init(
        responder: @escaping HTTPChannelHandler.Responder, endpoints: [WebSocketEndpoint],
        http1: HTTP1Channel.Configuration, requestHeadTimeout: Duration, maxFrameSize: Int, watchdog: ConnectionWatchdog,
        spawn: @escaping @Sendable (@escaping WebSocketWork) -> Bool,
        makeEventStream: @escaping @Sendable () -> EventStreamConnection
    ) {
        self.responder = Self.redirectingLateTakeovers(responder)
        self.endpoints = endpoints
        self.http1 = http1
        self.requestHeadTimeout = requestHeadTimeout
        self.maxFrameSize = maxFrameSize
        self.watchdog = watchdog
        self.spawn = spawn
        self.makeEventStream = makeEventStream
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // A channel keeps its last receive buffer for the next read, for its whole life: start
            // at 1 KiB (NIO's default is 2) so an idle WebSocket keeps less. Bigger reads grow it.
            try channel.syncOptions?.setOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
            let decision = NIOLoopBoundBox<Decision?>(nil, eventLoop: channel.eventLoop)
            let firstRequest = NIOLoopBoundBox<HTTPRequestHead?>(nil, eventLoop: channel.eventLoop)
            let malformedFirstRequest = MalformedFirstRequest(firstRequest)
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: Decision.self)
                    if !spawn({ promise.succeed(await self.decide(head, channel: channel)) }) {
                        promise.succeed(.refused(GatewayError(.serviceUnavailable, "server shutting down")))
                    }
                    return promise.futureResult
                        .map { decided -> HTTPHeaders? in
                            decision.value = decided
                            if case .accepted = decided { return HTTPHeaders() }
                            return nil
                        }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        channel.pipeline.syncOperations.removeHandler(malformedFirstRequest, promise: nil)
                        guard case .accepted(let acceptance) = decision.value else { throw ChannelError.inappropriateOperationForState }
                        decision.value = nil
                        try serve(channel, acceptance)
                        return .servedByPipeline
                    }
                })
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // From here on Hummingbird (or the event stream) answers parse errors.
                        channel.pipeline.syncOperations.removeHandler(malformedFirstRequest, promise: nil)
                        if decision.value == nil, let head = firstRequest.value, head.method == .GET,
                            EventStreamConnection.serves(head.uri)
                        {
                            try channel.pipeline.syncOperations.addHandler(makeEventStream())
                            return .servedByPipeline
                        }
                        let httpHandlers: [any RemovableChannelHandler] =
                            [HTTP1ToHTTPServerCodec(secure: false)] + http1.additionalChannelHandlers() + [
                                ExpectContinueHandler(),
                                HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger),
                            ]
                        if decision.value == nil {
                            try channel.pipeline.syncOperations.addHandler(
                                LateWebSocketUpgrade(lateUpgrades, httpHandlers: httpHandlers))
                        }
                        for handler in httpHandlers { try channel.pipeline.syncOperations.addHandler(handler) }
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        switch decision.value {
                        case .refused(let error)?:
                            return .refused(asyncChannel, error)
                        case .accepted?:
                            // Accepted, then the upgrade failed (a bad Sec-WebSocket-Version, say).
                            return .refused(asyncChannel, .badRequest("WebSocket upgrade failed"))
                        case nil:
                            return .http(asyncChannel)
                        }
                    }
                })
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Negotiated>(upgradeConfiguration: upgrade)
            configuration.enablePipelining = false  // Hummingbird reads requests in order itself
            configuration.enableErrorHandling = false  // Hummingbird answers parse errors
            configuration.enableResponseHeaderValidation = false  // swift-http-types validates
            configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
            configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
            configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: configuration)
            let upgradeHandler = try channel.pipeline.syncOperations.handler(
                type: NIOTypedHTTPServerUpgradeHandler<Negotiated>.self)
            try channel.pipeline.syncOperations.addHandler(
                FirstRequestPeek(firstRequest, timeout: requestHeadTimeout), position: .before(upgradeHandler))
            try channel.pipeline.syncOperations.addHandler(malformedFirstRequest)
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let error):
                await refuse(http, with: error, logger: logger)
            case .servedByPipeline:
                // The pipeline serves it; this task ends here.
                return
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed before its first request")
        } catch {
            logger.debug("connection not served", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Upgrades

    /// The endpoint's verdict on an upgrade request.
    private func decide(_ head: HTTPRequestHead, channel: any Channel) async -> Decision {
        do {
            let request = Request(head: try HTTPRequest(head, secure: false, splitCookie: false), body: .init(buffer: ByteBuffer()))
            guard let endpoint = endpoints.first(where: { $0.serves(request.uri.path) }) else {
                return .refused(GatewayError(.notFound, "no WebSocket at \(request.uri.path)"))
            }
            return .accepted(try await endpoint.accept(request, channel))
        } catch let error as GatewayError {
            return .refused(error)
        } catch {
            return .refused(.badRequest("invalid upgrade request"))
        }
    }

    /// Installs the connection's handler right after the frame decoder (NIO's upgrader added
    /// the encoder, the decoder and its protocol-error handler), watched by the watchdog: at the
    /// end of the pipeline, or after `handler` (an upgrade after other requests leaves
    /// Hummingbird's channel handlers at the end).
    private func serve(_ channel: any Channel, _ acceptance: WebSocketAcceptance, after handler: (any ChannelHandler)? = nil)
        throws
    {
        let progress = watchdog.watch(session: nil, channel: channel, label: acceptance.label, pings: true)
        channel.closeFuture.whenComplete { [watchdog] _ in watchdog.unwatch(progress) }
        let connection = WebSocketConnection(
            service: acceptance.makeService(), channel: channel, progress: progress,
            maxMessageSize: acceptance.maxMessageSize, spawn: spawn)
        try channel.pipeline.syncOperations.addHandler(connection, position: handler.map { .after($0) } ?? .last)
    }

    /// How ``LateWebSocketUpgrade`` takes a WebSocket asked for after other requests.
    private var lateUpgrades: LateWebSocketUpgrade.Upgrades {
        LateWebSocketUpgrade.Upgrades(
            maxFrameSize: maxFrameSize, spawn: spawn,
            decide: { head, channel in await self.decide(head, channel: channel) },
            serve: { channel, acceptance, handler in try self.serve(channel, acceptance, after: handler) })
    }

    /// Answers a refused upgrade with the error's status and JSON body, and closes.
    private func refuse(
        _ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, with error: GatewayError, logger: Logger
    ) async {
        logger.debug("websocket upgrade refused", metadata: ["status": "\(error.status.code)", "error": "\(error.message)"])
        let body = error.jsonBody
        do {
            try await http.executeThenClose { _, outbound in
                let head = HTTPResponse(
                    status: error.status,
                    headerFields: [
                        .connection: "close", .contentType: "application/json; charset=utf-8",
                        .contentLength: String(body.readableBytes),
                    ])
                try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
            }
        } catch {
            logger.trace("could not answer a refused upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// An event stream is only taken over on a connection's first request (it needs the
    /// connection to itself, and ``EventStreamConnection`` replaces the HTTP handlers from the
    /// start): asked for later on a keep-alive connection, it is sent to the same URI again with
    /// the connection closed, so that `EventSource`'s new connection gets it. (A later WebSocket
    /// upgrade never gets here: ``LateWebSocketUpgrade`` takes it, since WebSocket clients follow
    /// no redirect.)
    private static func redirectingLateTakeovers(_ responder: @escaping HTTPChannelHandler.Responder)
        -> HTTPChannelHandler.Responder
    {
        struct RedirectedTakeover: Error {}
        return { request, responseWriter, channel in
            guard request.method == .get, EventStreamConnection.serves(request.uri.path) else {
                return try await responder(request, responseWriter, channel)
            }
            var location = request.uri.path
            if let query = request.uri.query { location += "?\(query)" }
            try await responseWriter.writeResponse(
                HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw RedirectedTakeover()
        }
    }
}
