import Broker
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// The Socket.IO transport at `/socket.io/` (SPEC §3.1): Engine.IO v4 over HTTP long-polling
/// and WebSocket (directly, or as an upgrade from polling), Socket.IO v5 on the default
/// namespace, on sessions of the gateway's job router.
///
/// It is a `Service`: its `run()` owns the timer sweep (heartbeats, timeouts), and at graceful
/// shutdown it disconnects every client. The short work the sessions hand it (client events,
/// the event pump's resumption once a client took frames; the pumps themselves hold no task,
/// see ``SocketIOEventPump``) runs in the gateway's bounded ``ConnectionTasks``, beside the
/// other transports' work. Plug it into the gateway (its polling routes and its WebSocket
/// endpoint) and run it beside it, after the gateway so that it is shut down first (releasing
/// held polls before the server waits for open requests):
///
/// ```swift
/// let socketIO = SocketIOTransport(gateway: gateway)
/// let server = gateway.addingSocketIO(socketIO)
/// try await ServiceGroup(services: [router, server, socketIO], ...).run()
/// ```
///
/// Engine.IO sessions live on the node that created them (polling needs sticky routing);
/// rooms, events and chat reach every node through the router.
public final class SocketIOTransport: Service, Sendable {
    /// The gateway whose router, token authority, metrics and limits this transport uses.
    public let gateway: Gateway
    public let configuration: SocketIOConfiguration
    let table = EngineIOConnectionTable()
    let logger: Logger
    private let accepting = Atomic<Bool>(true)

    public init(gateway: Gateway, configuration: SocketIOConfiguration = SocketIOConfiguration()) {
        self.gateway = gateway
        self.configuration = configuration
        var logger = gateway.logger
        logger[metadataKey: "transport"] = "socket.io"
        self.logger = logger
    }

    /// Engine.IO sessions open on this node.
    public var sessionCount: Int { table.count }

    /// Registers `GET`/`POST /socket.io/` (polling). WebSocket upgrades are served by
    /// ``webSocketEndpoint``; ``Gateway/addingSocketIO(_:)`` adds both.
    public func register(on router: Hummingbird.Router<GatewayRequestContext>) {
        router.get("/socket.io") { [self] request, _ -> Response in
            await get(request)
        }
        router.post("/socket.io") { [self] request, _ -> Response in
            await post(request)
        }
        // Not the automatic HEAD of the GET: that would open (or poll) a session for nothing.
        router.head("/socket.io") { _, _ -> Response in Self.response(.error(.badRequest)) }
    }

    // MARK: Service

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sweep() }
            // Until graceful shutdown (or cancellation, which the closes below then skip).
            try? await gracefulShutdown()
            accepting.store(false, ordering: .relaxed)
            // Dropped, not told (EngineIOConnection.drop): told, clients would not reconnect,
            // and every deploy would leave them disconnected for good.
            for connection in table.all {
                await perform(connection.drop(), on: connection)
            }
            group.cancelAll()
        }
    }

    /// Whether new sessions are taken (until graceful shutdown).
    var isAccepting: Bool { accepting.load(ordering: .relaxed) }

    /// Runs `job` in the gateway's ``ConnectionTasks``; `false` once this service stopped.
    func spawn(_ job: @escaping @Sendable () async -> Void) -> Bool {
        guard accepting.load(ordering: .relaxed) else { return false }
        return gateway.connectionTasks.spawn(job)
    }

    /// Fires due timers of every session, every `sweepInterval`.
    private func sweep() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.sweepInterval)
            } catch {
                return
            }
            let now = ContinuousClock.now
            for connection in table.all {
                let effects = connection.timerFired(now: now)
                if !effects.isEmpty { await perform(effects, on: connection) }
            }
        }
    }

    // MARK: Polling

    private func get(_ request: Request) async -> Response {
        let target: EngineIORequest
        do {
            target = try classify(request, method: .get, isWebSocketUpgrade: false)
        } catch {
            return Self.response(.error(error))
        }
        switch target {
        case .handshake:
            guard isAccepting else { return Self.response(.error(.forbidden)) }
            let connection = EngineIOConnection(
                sid: EngineIOSession.makeSessionID(), transport: .polling, handshakeToken: request.presentedToken,
                configuration: configuration, webSocket: nil, now: .now)
            guard table.insert(connection) else { return Self.response(.error(.badRequest)) }
            return Self.response(.body(EngineIOPayload.encode(CollectionOfOne(connection.openingFrame))))
        case .poll(let sid):
            guard let connection = table.connection(sid) else { return Self.response(.error(.sessionIDUnknown)) }
            let (answer, effects) = await connection.poll()
            await perform(effects, on: connection)
            return Self.response(answer)
        case .post, .upgrade:
            return Self.response(.error(.badRequest))
        }
    }

    private func post(_ request: Request) async -> Response {
        let sid: String
        do {
            guard case .post(let target) = try classify(request, method: .post, isWebSocketUpgrade: false) else {
                return Self.response(.error(.badRequest))
            }
            sid = target
        } catch {
            return Self.response(.error(error))
        }
        guard let connection = table.connection(sid) else { return Self.response(.error(.sessionIDUnknown)) }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.engine.maxPayload)
        } catch {
            // Too large (or the client went away): the session cannot go on without that data.
            await perform(connection.close(disconnect: true), on: connection)
            return Self.response(.error(.payloadTooLarge))
        }
        let (answer, effects) = connection.post(Array(body.readableBytesView))
        await perform(effects, on: connection)
        return Self.response(answer)
    }

    func classify(
        _ request: Request, method: EngineIORequest.Method, isWebSocketUpgrade: Bool
    ) throws(EngineIOHTTPError) -> EngineIORequest {
        let query = request.uri.queryParameters
        return try EngineIORequest.classify(
            method: method, eio: query["EIO"].map(String.init), transport: query["transport"].map(String.init),
            sid: query["sid"].map(String.init), isWebSocketUpgrade: isWebSocketUpgrade)
    }

    static func response(_ answer: PollAnswer) -> Response {
        switch answer {
        case .body(let bytes):
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=UTF-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .error(let error):
            return Response(
                status: .init(code: error.httpStatus), headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: error.body)))
        }
    }
}
