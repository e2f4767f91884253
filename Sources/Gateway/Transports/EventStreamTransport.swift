import HTTPTypes
import Broker
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The Server-Sent Events transport at `GET /api/v1/events` (SPEC §3.3): one session of the
/// job router's registry written as `id:`/`event:`/`data:` records.
///
/// The token (header or `?token=`) and `Last-Event-ID` (or `?lastEventId=`) are checked before
/// the stream starts, so a bad one gets a plain 401/400. The stream sends `connected`, the
/// replayed events, then live ones, with a comment line whenever it has been idle for the
/// heartbeat interval. It ends when the client goes away (noticed at once, not at the next
/// write), when the client falls more than the outbound capacity behind (with a final
/// `disconnect` event saying why), or on graceful shutdown.
struct EventStreamTransport: Sendable {
    let gateway: Gateway

    func register(on router: Hummingbird.Router<GatewayRequestContext>) {
        router.get("/api/v1/events") { request, context in
            try await open(request, context: context)
        }
    }

    private func open(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        let userId = try await gateway.authenticate(request.presentedToken)
        let lastEventId = request.lastEventId
        try WebSocketTransport.validate(lastEventId: lastEventId)
        let session: Session
        do {
            session = try await gateway.router.connect(
                userId: userId, lastEventId: lastEventId, transport: Transport.sse.rawValue,
                capacity: gateway.configuration.outboundQueueCapacity)
        } catch let error as BrokerError {
            context.logger.warning("sse not opened: backend failed", metadata: ["error": "\(error)"])
            throw GatewayError.unavailable("backend unavailable")
        }
        var sessionLogger = context.logger
        sessionLogger[metadataKey: "session"] = "\(session.id)"
        sessionLogger[metadataKey: "userId"] = "\(userId)"
        let logger = sessionLogger
        let gateway = self.gateway
        let channel = context.channel
        let headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
            .init("X-Accel-Buffering")!: "no",
        ]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                gateway.metrics.connectionOpened(.sse)
                logger.debug("sse connected")
                defer {
                    session.close()
                    gateway.metrics.connectionClosed(.sse)
                    if case .slowConsumer = session.closeReason { gateway.metrics.slowConsumer(.sse) }
                    logger.debug("sse closed", metadata: ["reason": "\(session.closeReason.map { "\($0)" } ?? "")"])
                }
                do {
                    try await request.body.consumeWithCancellationOnInboundClose { _ in
                        try await withGracefulShutdownHandler {
                            try await gateway.watchdog.watching(session: session, channel: channel, label: "sse") {
                                try await stream(session, userId: userId, to: &writer, progress: $0, gateway: gateway)
                            }
                        } onGracefulShutdown: {
                            session.close()
                        }
                    }
                } catch {
                    // The client went away, or the watchdog dropped it: nothing to finish.
                    return
                }
                try await writer.finish(nil)
            })
    }
}

/// What the stream waits for next.
private enum StreamStep: Sendable {
    case event(RoutedEvent)
    case ended
    case idle
}

private func stream(
    _ session: Session, userId: String, to writer: inout any ResponseBodyWriter,
    progress: ConnectionWatchdog.Progress, gateway: Gateway
) async throws {
    let connected = #"{"userId":"# + JSONText.quoted(userId) + "}"
    let opening = SSEFormat.retry(milliseconds: 2_000) + SSEFormat.event(id: nil, name: "connected", data: connected)
    try await progress.writing { try await writer.write(ByteBuffer(string: opening)) }
    while !Task.isCancelled {
        let steps = await next(from: session, idleAfter: gateway.configuration.heartbeatInterval)
        var text = ""
        var delivered = 0
        var ended = false
        for step in steps {
            switch step {
            case .event(let event):
                text += SSEFormat.event(id: event.eventId?.description, name: event.name, data: event.dataJSON)
                delivered += 1
            case .idle:
                text += SSEFormat.heartbeat()
            case .ended:
                ended = true
            }
        }
        if !text.isEmpty { try await progress.writing { try await writer.write(ByteBuffer(string: text)) } }
        gateway.metrics.delivered(.sse, count: delivered)
        if ended { break }
    }
    if case .slowConsumer = session.closeReason {
        let reason = #"{"reason":"slow consumer"}"#
        try await progress.writing {
            try await writer.write(ByteBuffer(string: SSEFormat.event(id: nil, name: "disconnect", data: reason)))
        }
    }
}

/// The next event, or `.idle` if none comes within `interval`. Events already waiting are
/// taken directly; only an empty buffer races the session against a timer, and whatever the
/// race yields (both sides may finish together) is returned, so no event is lost.
private func next(from session: Session, idleAfter interval: Duration) async -> [StreamStep] {
    if session.bufferedCount > 0 || session.isClosed {
        var iterator = session.makeAsyncIterator()
        return [await iterator.next().map(StreamStep.event) ?? .ended]
    }
    return await withTaskGroup(of: StreamStep?.self) { group in
        group.addTask {
            var iterator = session.makeAsyncIterator()
            let event = await iterator.next()
            if let event { return .event(event) }
            // Cancelled by the timer (the session is still open), or the session ended.
            return session.isClosed || !Task.isCancelled ? .ended : nil
        }
        group.addTask {
            do {
                try await Task.sleep(for: interval)
                return .idle
            } catch {
                return nil
            }
        }
        var steps: [StreamStep] = []
        if let first = await group.next(), let first { steps.append(first) }
        group.cancelAll()
        for await step in group {
            if let step, case .event = step { steps.insert(step, at: 0) } else if let step, case .ended = step {
                steps.append(step)
            }
        }
        // An outer cancellation (client gone) cancels both children: end the stream.
        if steps.isEmpty { steps.append(.ended) }
        return steps
    }
}
