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
        // Checked again: the upgrade check ran on a copy of this request a moment ago.
        let userId = try await gateway.authenticate(request.presentedToken)
        let session = try await gateway.router.connect(
            userId: userId, lastEventId: request.lastEventId, transport: Transport.websocket.rawValue,
            capacity: gateway.configuration.outboundQueueCapacity)
        let metrics = gateway.metrics
        metrics.connectionOpened(.websocket)
        var sessionLogger = logger
        sessionLogger[metadataKey: "session"] = "\(session.id)"
        sessionLogger[metadataKey: "userId"] = "\(userId)"
        let logger = sessionLogger
        logger.debug("websocket connected")
        defer {
            session.close()
            metrics.connectionClosed(.websocket)
            if case .slowConsumer = session.closeReason { metrics.slowConsumer(.websocket) }
            logger.debug("websocket closed", metadata: ["reason": "\(session.closeReason.map { "\($0)" } ?? "")"])
        }
        let watchdog = ConnectionWatchdog(
            session: session, channel: channel, configuration: gateway.configuration, logger: logger)
        try await outbound.write(.text(ServerFrame.connected(userId: userId, ts: Timestamp.now().iso8601)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await deliver(session, to: outbound, progress: watchdog.progress, logger: logger)
            }
            group.addTask {
                // Returns only once it has dropped the connection (or on cancellation).
                await watchdog.run()
            }
            group.addTask {
                try await receive(inbound, session: session, outbound: outbound, logger: logger)
            }
            // Whichever side ends first ends the connection.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Writes the session's events until it closes, then says why.
    private func deliver(
        _ session: Session, to outbound: WebSocketOutboundWriter, progress: ConnectionWatchdog.Progress, logger: Logger
    ) async throws {
        for await event in session {
            let frame = ServerFrame.event(
                type: event.name, payload: event.dataJSON, eventId: event.eventId?.description,
                ts: event.timestamp.iso8601)
            try await progress.writing { try await outbound.write(.text(frame)) }
            gateway.metrics.delivered(.websocket)
        }
        switch session.closeReason {
        case .slowConsumer(let capacity):
            logger.warning("websocket client too slow: disconnected", metadata: ["capacity": "\(capacity)"])
            try await progress.writing { try await outbound.close(.policyViolation, reason: "slow consumer") }
        case .shutdown:
            try await outbound.close(.goingAway, reason: "server shutting down")
        case .closed, nil:
            break
        }
    }

    /// Answers the client's frames until it closes. Throws (closing with 1009) on a message
    /// over the limit; everything else malformed gets an `error` frame.
    private func receive(
        _ inbound: WebSocketInboundStream, session: Session, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        for try await message in inbound.messages(maxSize: gateway.configuration.maxFrameSize) {
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
                logger.warning("malformed websocket frame", metadata: ["reason": "\(error)"])
                try await outbound.write(.text(ServerFrame.error(error.description, ts: now())))
                continue
            }
            switch frame {
            case .ping:
                try await outbound.write(.text(ServerFrame.pong()))
            case .subscribe(let jobId):
                try await outbound.write(.text(await subscribe(session, to: jobId, logger: logger)))
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
            logger.warning("subscribe failed", metadata: ["error": "\(error)"])
            return ServerFrame.error("backend unavailable", ts: now())
        }
    }

    private func now() -> String { Timestamp.now().iso8601 }
}
