import Broker
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// What every event stream of a gateway shares: one instance, not a copy per connection.
final class EventStreams: Sendable {
    let gateway: Gateway
    /// Runs a stream's async work (the token check and replay read) in the gateway's task group.
    let spawn: @Sendable (@escaping WebSocketWork) -> Bool

    init(gateway: Gateway, spawn: @escaping @Sendable (@escaping WebSocketWork) -> Bool) {
        self.gateway = gateway
        self.spawn = spawn
    }
}

/// The Server-Sent Events transport at `GET /api/v1/events` (SPEC §3.3): one session of the
/// job router's registry written as `id:`/`event:`/`data:` records, served from the channel
/// pipeline with no task of its own (like ``WebSocketConnection``; a stream held by a task cost
/// about 50 KiB per idle client).
///
/// The token (header or `?token=`) and `Last-Event-ID` (or `?lastEventId=`) are checked before
/// the stream starts, so a bad one gets a plain 401/400 JSON answer. The stream sends
/// `connected`, the replayed events, then live ones as the session wakes it, while the channel
/// takes them; a comment line goes out whenever it has been idle for the heartbeat interval.
/// It ends when the client goes away (noticed at once), when the client falls more than the
/// outbound capacity behind (with a final `disconnect` event saying why), or on graceful
/// shutdown. The stream is the connection's only response: ``GatewayChannel`` hands it over
/// when it is a connection's first request (as `EventSource` sends it).
final class EventStreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let path = "/api/v1/events"

    /// Whether a request URI names the event stream.
    static func serves(_ uri: String) -> Bool {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return path == Self.path || path == Self.path + "/"
    }

    private let streams: EventStreams
    private var gateway: Gateway { streams.gateway }
    private var context: ChannelHandlerContext?
    private var logger: Logger
    private var requested = false
    /// The request's HTTP version, which decides how the stream is framed.
    private var version = HTTPVersion.http1_1
    private var session: Session?
    private var progress: ConnectionWatchdog.Progress?
    /// The next heartbeat: one timer, re-armed from the last write each time it fires.
    private var heartbeat: Scheduled<Void>?
    private var lastWrite = NIODeadline.now()
    /// The response ended (or the connection is closing): nothing more is written.
    private var ended = false
    /// `Access-Control-Allow-Origin` for a cross-origin request, when the gateway allows one.
    private var allowOrigin: String?

    init(streams: EventStreams) {
        self.streams = streams
        self.logger = streams.gateway.logger
    }

    // MARK: Request

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), !requested else { return }
        requested = true
        version = head.version
        let request: Request
        do {
            request = Request(head: try HTTPRequest(head, secure: false, splitCookie: false), body: .init(buffer: ByteBuffer()))
        } catch {
            return refuse(.badRequest("invalid request"), context: context)
        }
        if let origin = gateway.configuration.corsOrigin, request.headers[.origin] != nil {
            allowOrigin = origin
        }
        let gateway = self.gateway
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let started = streams.spawn {
            let outcome: Result<Session, GatewayError>
            do {
                let userId = try await gateway.authenticate(request.presentedToken)
                outcome = .success(
                    try await gateway.router.connect(
                        userId: userId, lastEventId: request.lastEventId, transport: Transport.sse.rawValue,
                        capacity: gateway.configuration.outboundQueueCapacity))
            } catch let error as GatewayError {
                outcome = .failure(error)
            } catch {
                gateway.logThrottle.log(
                    "backend", .warning, "sse not opened: backend failed", metadata: ["error": "\(error)"], to: gateway.logger)
                outcome = .failure(.unavailable("backend unavailable"))
            }
            eventLoop.execute {
                let connection = bound.value
                switch outcome {
                case .success(let session):
                    guard let context = connection.context, !connection.ended else {
                        session.close()  // the client left meanwhile
                        return
                    }
                    connection.start(session, context: context)
                case .failure(let error):
                    if let context = connection.context { connection.refuse(error, context: context) }
                }
            }
        }
        if !started { refuse(.unavailable("server shutting down"), context: context) }
    }

    /// The whole exchange for a refused stream: the error as JSON, then close.
    private func refuse(_ error: GatewayError, context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        let body = error.jsonBody
        var headers = HTTPHeaders([
            ("Content-Type", "application/json; charset=utf-8"), ("Content-Length", "\(body.readableBytes)"),
            ("Connection", "close"),
        ])
        addCrossOriginHeaders(to: &headers)
        let status = HTTPResponseStatus(statusCode: error.status.code)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// As ``CrossOriginMiddleware`` sends them (an `EventSource` with `withCredentials` needs
    /// the credentials header for one configured origin).
    private func addCrossOriginHeaders(to headers: inout HTTPHeaders) {
        guard let allowOrigin else { return }
        headers.add(name: "Access-Control-Allow-Origin", value: allowOrigin)
        for (name, value) in CrossOrigin.credentialHeaders(allowing: allowOrigin) {
            headers.add(name: name.canonicalName, value: value)
        }
    }

    // MARK: Stream

    private func start(_ session: Session, context: ChannelHandlerContext) {
        self.session = session
        logger[metadataKey: "session"] = "\(session.id)"
        logger[metadataKey: "userId"] = "\(session.userId)"
        gateway.metrics.connectionOpened(.sse)
        logger.debug("sse connected")
        progress = gateway.watchdog.watch(session: session, channel: context.channel, label: "sse", pings: false)
        var headers = HTTPHeaders([
            ("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
        ])
        addCrossOriginHeaders(to: &headers)
        // HTTP/1.0 has no chunked coding (RFC 9112 §6.1): a 1.0 client gets a 1.0 response whose
        // body ends with the connection, as the stream does anyway; NIO frames a 1.1 one chunked.
        let streamVersion: HTTPVersion = version.major == 1 && version.minor == 0 ? .http1_0 : .http1_1
        if streamVersion == .http1_0 { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: streamVersion, status: .ok, headers: headers))), promise: nil)
        let connected = #"{"userId":"# + JSONText.quoted(session.userId) + "}"
        var opening = SSEFormat.retry(milliseconds: 2_000) + SSEFormat.event(id: nil, name: "connected", data: connected)
        // A comment, not an `error` event: EventSource dispatches its own connection failures as `error`.
        if let notice = session.ignoredLastEventIdNotice { opening += SSEFormat.comment(notice) }
        write(opening, context: context)
        context.flush()
        scheduleHeartbeat(context: context)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        session.onAvailable {
            eventLoop.execute { bound.value.drain() }
        }
    }

    /// Writes what waits while the channel takes it; ends the stream when the session ended.
    private func drain() {
        guard let context, let session, !ended else { return }
        while context.channel.isWritable {
            let events = session.take(max: 64)
            if events.isEmpty { break }
            var text = ""
            for event in events {
                text += SSEFormat.event(id: event.eventId?.description, name: event.name, data: event.dataJSON)
            }
            write(text, context: context)
            context.flush()
            gateway.metrics.delivered(.sse, count: events.count)
        }
        progress?.noteBlocked(!context.channel.isWritable && session.bufferedCount > 0)
        guard let reason = session.closeReason else { return }
        if case .slowConsumer(let capacity) = reason {
            logger.warning("sse client too slow: disconnected", metadata: ["capacity": "\(capacity)"])
            guard context.channel.isWritable else {
                // A client that does not read would never take the last event.
                ended = true
                return context.close(promise: nil)
            }
            write(SSEFormat.event(id: nil, name: "disconnect", data: #"{"reason":"slow consumer"}"#), context: context)
        }
        endStream(context: context)
    }

    /// Arms the one timer of the stream for a heartbeat interval after its last write. A timer
    /// ticking at a fixed rate, beating only when a whole interval had passed since the last write,
    /// let silence last almost two intervals (an event just after a tick put the next beat two
    /// ticks later), past the idle limits of proxies the interval is chosen to stay under.
    private func scheduleHeartbeat(context: ChannelHandlerContext) {
        let interval = TimeAmount(gateway.configuration.heartbeatInterval)
        heartbeat = context.eventLoop.assumeIsolated().scheduleTask(deadline: lastWrite + interval) {
            self.heartbeatDue(interval: interval)
        }
    }

    /// Beats if nothing went out for the interval, then re-arms from the last write (an event
    /// written since the timer was armed moves the next beat later, not to a tick after it).
    private func heartbeatDue(interval: TimeAmount) {
        heartbeat = nil
        guard let context, !ended, session != nil else { return }
        if NIODeadline.now() - lastWrite >= interval {
            write(SSEFormat.heartbeat(), context: context)
            context.flush()
        }
        scheduleHeartbeat(context: context)
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        lastWrite = .now()
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
    }

    /// Ends the response (the last chunk) and the connection.
    private func endStream(context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        context.writeAndFlushThenClose(wrapOutboundOut(.end(nil)))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: the stream ends (the session's close wakes drain, which ends it).
            if let session { session.close() } else if !requested { context.close(promise: nil) }
        } else if case .inputClosed = event as? ChannelEvent {
            // The client went away (the server allows half-closure, so no close comes by itself).
            ended = true
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ended = true
        context.close(promise: nil)
    }

    /// The connection is gone: the session closes and leaves nothing behind.
    private func finish() {
        heartbeat?.cancel()
        heartbeat = nil
        if let progress {
            gateway.watchdog.unwatch(progress)
            self.progress = nil
        }
        guard let session else { return }
        self.session = nil
        ended = true
        session.close()
        gateway.metrics.connectionClosed(.sse)
        if case .slowConsumer = session.closeReason { gateway.metrics.slowConsumer(.sse, dropped: session.discardedCount) }
        logger.debug("sse closed", metadata: ["reason": "\(session.closeReason.map { "\($0)" } ?? "")"])
    }
}
