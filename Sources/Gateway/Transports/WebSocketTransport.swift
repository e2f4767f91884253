import Broker
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// The plain WebSocket transport at `/ws` (SPEC §3.2): JSON text frames over one session of
/// the job router's registry.
///
/// The token is checked before the upgrade (a refused token is never upgraded). Once open,
/// the connection sends `connected`, the replayed events, then live ones; it answers `ping`,
/// `subscribe` and refuses malformed frames with an `error` frame, staying open. A frame or
/// message over the configured limit closes it with 1009; a client that falls more than the
/// outbound capacity behind is closed with 1008 and counted.
struct WebSocketTransport: Sendable {
    let gateway: Gateway

    func register(on router: Hummingbird.Router<GatewayRequestContext>) {
        router.ws("/ws") { request, context in
            do {
                _ = try await gateway.authenticate(request.presentedToken)
                try Self.validate(lastEventId: request.lastEventId)
            } catch let error as GatewayError {
                // An upgrade attempt is answered by the upgrader, not by this response: file
                // the refusal so the client gets this status rather than a bare 400.
                if request.headers[.upgrade]?.lowercased() == "websocket" {
                    context.refuseUpgrade(with: error)
                }
                throw error
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            try await serve(
                inbound: inbound, outbound: outbound, request: context.request,
                channel: context.requestContext.channel, logger: context.logger)
        }
    }

    static func validate(lastEventId: String?) throws {
        if let lastEventId, EventID(lastEventId) == nil {
            throw GatewayError.badRequest("lastEventId \"\(lastEventId.prefix(40))\" is not a valid event id")
        }
    }

    private func serve(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, request: Request, channel: any Channel,
        logger: Logger
    ) async throws {
        // This task lives as long as the connection and keeps every stack slab it ever grew, so
        // the deep work of connecting (the token check, again: the upgrade check ran on a copy of
        // this request; the replay read) runs in a short-lived child whose slabs are freed.
        let (userId, session) = try await Self.transiently { [gateway] in
            let userId = try await gateway.authenticate(request.presentedToken)
            let session = try await gateway.router.connect(
                userId: userId, lastEventId: request.lastEventId, transport: Transport.websocket.rawValue,
                capacity: gateway.configuration.outboundQueueCapacity)
            return (userId, session)
        }
        let metrics = gateway.metrics
        metrics.connectionOpened(.websocket)
        logger.debug("websocket connected", metadata: ["session": "\(session.id)", "userId": "\(userId)"])
        defer {
            session.close()
            metrics.connectionClosed(.websocket)
            if case .slowConsumer = session.closeReason { metrics.slowConsumer(.websocket) }
            logger.debug(
                "websocket closed",
                metadata: ["session": "\(session.id)", "reason": "\(session.closeReason.map { "\($0)" } ?? "")"])
        }
        let progress = gateway.watchdog.watch(session: session, channel: channel, label: "websocket", pings: true)
        defer { gateway.watchdog.unwatch(progress) }
        // One task per connection: this one reads. Events are written from the channel's event
        // loop as they arrive (no task waits on the session); when the session ends for the
        // server's reasons, the pusher wakes this reader, which says why and closes.
        try await WebSocketSessionPusher.start(
            on: channel, session: session, progress: progress, metrics: metrics,
            opening: ServerFrame.connected(userId: userId, ts: Timestamp.now().iso8601))
        try await receive(inbound, session: session, outbound: outbound, logger: logger)
        switch session.closeReason {
        case .slowConsumer(let capacity):
            logger.warning(
                "websocket client too slow: disconnected",
                metadata: ["session": "\(session.id)", "userId": "\(session.userId)", "capacity": "\(capacity)"])
            try await progress.writing { try await outbound.close(.policyViolation, reason: "slow consumer") }
        case .shutdown:
            try await outbound.close(.goingAway, reason: "server shutting down")
        case .closed, nil:
            break
        }
    }

    /// Runs `work` in a child task that ends with it, so that the stack it grows is freed.
    static func transiently<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask(operation: work)
            return try await group.next()!
        }
    }

    /// Answers the client's frames until it closes, or the server ends the session. Throws
    /// (closing with 1009) on a message over the limit; everything else malformed gets an `error`
    /// frame.
    private func receive(
        _ inbound: WebSocketInboundStream, session: Session, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        for try await message in inbound.messages(maxSize: gateway.configuration.maxFrameSize) {
            // The server ended the session (slow consumer, shutdown): the pusher woke us to close.
            if let reason = session.closeReason, reason != .closed { return }
            guard case .text(let text) = message else {
                gateway.metrics.malformedFrame()
                try await outbound.write(.text(ServerFrame.error("binary frames are not accepted", ts: now())))
                continue
            }
            let frame: ClientFrame
            do {
                frame = try ClientFrame.parse(text)
            } catch {
                gateway.metrics.malformedFrame()
                logger.warning(
                    "malformed websocket frame", metadata: ["session": "\(session.id)", "reason": "\(error)"])
                try await outbound.write(.text(ServerFrame.error(error.description, ts: now())))
                continue
            }
            switch frame {
            case .ping:
                try await outbound.write(.text(ServerFrame.pong()))
            case .subscribe(let jobId):
                // A store lookup reaches deep into the broker: in a child, so the reader stays shallow.
                let answer = try await Self.transiently { await subscribe(session, to: jobId, logger: logger) }
                try await outbound.write(.text(answer))
            }
        }
    }

    /// Follows one of the user's own jobs: joins room `job:<id>` and confirms with its status.
    private func subscribe(_ session: Session, to jobId: String, logger: Logger) async -> String {
        do {
            for store in gateway.router.stores.values {
                switch try await store.lookup(jobId, for: session.userId) {
                case .found(let record):
                    try? gateway.router.registry.joinTrusted(session, room: "job:\(jobId)")
                    return ServerFrame.subscribed(jobId: jobId, status: record.status.rawValue, ts: now())
                case .notOwner:
                    return ServerFrame.error("job \(jobId) belongs to another user", ts: now())
                case .notFound:
                    continue
                }
            }
            return ServerFrame.error("job \(jobId) not found", ts: now())
        } catch {
            logger.warning("subscribe failed", metadata: ["session": "\(session.id)", "error": "\(error)"])
            return ServerFrame.error("backend unavailable", ts: now())
        }
    }

    private func now() -> String { Timestamp.now().iso8601 }
}
