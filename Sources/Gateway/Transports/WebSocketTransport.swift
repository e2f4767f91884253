import Broker
import Hummingbird
import Logging
import NIOCore
import NIOWebSocket

/// The plain WebSocket transport at `/ws` (SPEC §3.2): JSON text frames over one session of
/// the job router's registry.
///
/// The token is checked before the upgrade (a refused token is never upgraded: the client gets
/// `401 {"error":...}`). Once open, the connection sends `connected`, the replayed events, then
/// live ones; it answers `ping`, `subscribe` and refuses malformed frames with an `error` frame,
/// staying open. A frame or message over the configured limit closes it with 1009; a client
/// that falls more than the outbound capacity behind is closed with 1008 and counted.
///
/// One instance serves every connection of a gateway: each connection's service refers to it
/// rather than holding a copy of the gateway's configuration.
final class WebSocketTransport: Sendable {
    let gateway: Gateway

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    var endpoint: WebSocketEndpoint {
        WebSocketEndpoint(path: "/ws") { [self] request, _ in
            let userId = try await gateway.authenticate(request.presentedToken)
            let lastEventId = request.lastEventId
            return WebSocketAcceptance(label: "websocket", maxMessageSize: gateway.configuration.maxFrameSize) {
                WebSocketSessionService(transport: self, userId: userId, lastEventId: lastEventId)
            }
        }
    }
}

/// One `/ws` connection: a router session whose events are written from the channel's event
/// loop as they arrive (the session wakes it, ``Session/onAvailable(_:)``), while the channel
/// takes them; the client's frames answered in order.
///
/// While events wait on a channel that is not writable, the write counts as blocked for the
/// ``ConnectionWatchdog``, which drops the connection after the stall timeout; a client too
/// slow for that overflows its session and is disconnected as a slow consumer.
final class WebSocketSessionService: WebSocketService {
    private let transport: WebSocketTransport
    private let userId: String
    private let lastEventId: String?
    private var session: Session?
    private var gateway: Gateway { transport.gateway }
    private var logger: Logger { gateway.logger }

    init(transport: WebSocketTransport, userId: String, lastEventId: String?) {
        self.transport = transport
        self.userId = userId
        self.lastEventId = lastEventId
    }

    func opened(_ connection: WebSocketConnection) -> WebSocketWork? {
        // The replay read: the connection hands over no client frame until it is done.
        let connection = connection.handle
        return { [gateway, userId, lastEventId] in
            let session: Session
            do {
                session = try await gateway.router.connect(
                    userId: userId, lastEventId: lastEventId, transport: Transport.websocket.rawValue,
                    capacity: gateway.configuration.outboundQueueCapacity)
            } catch {
                gateway.logThrottle.log(
                    "backend", .warning, "websocket session not opened", metadata: ["userId": "\(userId)", "error": "\(error)"],
                    to: gateway.logger)
                // 1013 Try Again Later (RFC 6455 registry): the client did nothing wrong and may retry.
                connection.onEventLoop { $0.close(.unknown(1013), reason: "backend unavailable") }
                return
            }
            connection.onEventLoop { connection in
                guard let service = connection.service(as: WebSocketSessionService.self) else {
                    session.close()  // the client left meanwhile
                    return
                }
                service.start(session, on: connection)
            }
        }
    }

    private func start(_ session: Session, on connection: WebSocketConnection) {
        self.session = session
        gateway.watchdog.attach(session, to: connection.progress)
        gateway.metrics.connectionOpened(.websocket)
        logger.debug("websocket connected", metadata: ["session": "\(session.id)", "userId": "\(userId)"])
        let ts = Timestamp.now().iso8601
        connection.write(text: ServerFrame.connected(userId: userId, ts: ts))
        if let notice = session.ignoredLastEventIdNotice { connection.write(text: ServerFrame.error(notice, ts: ts)) }
        connection.flush()
        let handle = connection.handle
        session.onAvailable {
            handle.onEventLoop { $0.service(as: WebSocketSessionService.self)?.drain($0) }
        }
    }

    /// Writes what waits while the channel takes it; ends the connection when the server ended
    /// the session.
    private func drain(_ connection: WebSocketConnection) {
        guard let session, connection.isOpen else { return }
        while connection.isWritable {
            let events = session.take(max: 64)
            if events.isEmpty { break }
            for event in events {
                connection.writeText(capacity: event.dataJSON.utf8.count + event.name.utf8.count + 80) {
                    ServerFrame.writeEvent(event, into: &$0)
                }
            }
            connection.flush()
            gateway.metrics.delivered(.websocket, count: events.count)
        }
        connection.progress.noteBlocked(!connection.isWritable && session.bufferedCount > 0)
        switch session.closeReason {
        case .slowConsumer(let capacity):
            logger.warning(
                "websocket client too slow: disconnected",
                metadata: ["session": "\(session.id)", "userId": "\(userId)", "capacity": "\(capacity)"])
            // A client that does not read would never take the close frame.
            if connection.isWritable { connection.close(.policyViolation, reason: "slow consumer") } else { connection.abort() }
        case .shutdown:
            connection.close(.goingAway, reason: "server shutting down")
        case .closed, nil:
            break
        }
    }

    func received(_ message: WebSocketMessage, on connection: WebSocketConnection) -> WebSocketWork? {
        guard case .text(let buffer) = message else {
            gateway.metrics.malformedFrame()
            reply(ServerFrame.error("binary frames are not accepted", ts: now()), on: connection)
            return nil
        }
        let frame: ClientFrame
        do {
            frame = try ClientFrame.parse(String(buffer: buffer))
        } catch {
            gateway.metrics.malformedFrame()
            logger.warning(
                "malformed websocket frame",
                metadata: ["session": "\(session.map { "\($0.id)" } ?? "-")", "reason": "\(error)"])
            reply(ServerFrame.error(error.description, ts: now()), on: connection)
            return nil
        }
        switch frame {
        case .ping:
            reply(ServerFrame.pong(), on: connection)
            return nil
        case .subscribe(let jobId):
            guard let session else { return nil }
            let connection = connection.handle
            return { [gateway] in
                let answer = await Self.subscribe(session, to: jobId, gateway: gateway)
                connection.onEventLoop { $0.service(as: WebSocketSessionService.self)?.reply(answer, on: $0) }
            }
        }
    }

    func writabilityChanged(on connection: WebSocketConnection) {
        if connection.isWritable { drain(connection) }
    }

    func shutdown(_ connection: WebSocketConnection) {
        session?.close()
        connection.close(.goingAway, reason: "server shutting down")
    }

    func closed(_ connection: WebSocketConnection) {
        guard let session else { return }
        self.session = nil
        session.close()
        gateway.metrics.connectionClosed(.websocket)
        if case .slowConsumer = session.closeReason { gateway.metrics.slowConsumer(.websocket, dropped: session.discardedCount) }
        logger.debug(
            "websocket closed",
            metadata: ["session": "\(session.id)", "reason": "\(session.closeReason.map { "\($0)" } ?? "")"])
    }

    private func reply(_ text: String, on connection: WebSocketConnection) {
        connection.write(text: text)
        connection.flush()
    }

    /// Follows one of the user's own jobs: joins room `job:<id>` and confirms with its status.
    private static func subscribe(_ session: Session, to jobId: String, gateway: Gateway) async -> String {
        let now = Timestamp.now().iso8601
        do {
            for store in gateway.router.stores.values {
                let status: String
                switch try await store.lookup(jobId, for: session.userId) {
                case .found(let record):
                    status = record.status.rawValue
                case .foundAsWritten(let bytes):
                    status = StoredRecord.status(in: bytes) ?? "unknown"
                case .notOwner:
                    return ServerFrame.error("job \(jobId) belongs to another user", ts: now)
                case .notFound:
                    continue
                }
                try? gateway.router.registry.joinTrusted(session, room: "job:\(jobId)")
                return ServerFrame.subscribed(jobId: jobId, status: status, ts: now)
            }
            return ServerFrame.error("job \(jobId) not found", ts: now)
        } catch {
            gateway.logThrottle.log(
                "backend", .warning, "subscribe failed", metadata: ["session": "\(session.id)", "error": "\(error)"],
                to: gateway.logger)
            return ServerFrame.error("backend unavailable", ts: now)
        }
    }

    private func now() -> String { Timestamp.now().iso8601 }
}
