import Broker
import BrokerTesting
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServiceLifecycle
import Synchronization

/// A test gateway with the Socket.IO transport plugged in and running beside it.
struct SocketIOTestGateway: Sendable {
    let base: TestGateway
    let transport: SocketIOTransport

    init(
        configuration: SocketIOConfiguration = SocketIOConfiguration(), gateway: GatewayConfiguration = GatewayConfiguration(port: 0),
        withAgent: Bool = true
    ) async throws {
        base = try await TestGateway(configuration: gateway, withAgent: withAgent)
        transport = SocketIOTransport(gateway: base.gateway, configuration: configuration)
    }

    var router: JobRouter { base.router }

    func application() -> some ApplicationProtocol {
        var services: [any Service] = []
        if let memory = base.memory { services.append(memory) }
        services.append(base.router)
        if base.withAgent {
            services.append(
                Agent(
                    broker: base.broker, handler: DemoRebalanceHandler(),
                    configuration: AgentConfiguration(visibilityTimeout: .seconds(5)), logger: TestGateway.logger))
        }
        services.append(transport)
        return base.gateway.addingSocketIO(transport).makeApplication(services: services)
    }

    /// Runs `body` once the router listens (`.router`: requests go straight to the responder).
    func run<Value: Sendable>(
        _ framework: TestingSetup = .router, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        let router = base.router
        return try await application().test(framework) { client in
            await router.waitUntilSubscribed()
            return try await body(client)
        }
    }
}

/// A hand-driven Engine.IO polling client.
final class PollingClient: Sendable {
    let client: any TestClientProtocol
    let sid: String
    let handshake: String
    /// Packets of an answer received but not yet looked at by `collect`.
    private let unread = Mutex<[String]>([])

    init(client: any TestClientProtocol, sid: String, handshake: String) {
        self.client = client
        self.sid = sid
        self.handshake = handshake
    }

    static let base = "/socket.io/?EIO=4&transport=polling"

    /// Opens a session: `GET /socket.io/?EIO=4&transport=polling` (plus `query`).
    static func open(_ client: any TestClientProtocol, query: String = "", headers: HTTPFields = [:]) async throws
        -> PollingClient
    {
        let response = try await client.execute(uri: base + query, method: .get, headers: headers)
        let body = String(buffer: response.body)
        guard response.status == .ok, body.hasPrefix("0{"),
            case .object(let members) = try JSONDecoder().decode(JSONValue.self, from: Data(body.dropFirst().utf8)),
            let sid = members["sid"]?.stringValue
        else { throw ConformanceFailure("did not get a handshake (got \(response.status) \(body))") }
        return PollingClient(client: client, sid: sid, handshake: body)
    }

    var uri: String { Self.base + "&sid=" + sid }

    /// POSTs packets joined by the record separator.
    @discardableResult
    func post(_ packets: String...) async throws -> TestResponse {
        try await client.execute(
            uri: uri, method: .post, headers: [.contentType: "text/plain;charset=UTF-8"],
            body: ByteBuffer(string: packets.joined(separator: "\u{1e}")))
    }

    /// One GET: the packets of its answer.
    func get() async throws -> [String] {
        let response = try await client.execute(uri: uri, method: .get)
        guard response.status == .ok else {
            throw ConformanceFailure("did not get a poll answer (got \(response.status) \(String(buffer: response.body)))")
        }
        return String(buffer: response.body).split(separator: "\u{1e}").map(String.init)
    }

    /// GETs until a packet satisfies `predicate` (answering pings), within `limit`; returns
    /// every packet seen, that one last.
    func collect(
        until predicate: @escaping @Sendable (String) -> Bool, within limit: Duration = .seconds(10)
    ) async throws -> [String] {
        // A held GET cannot be cancelled: check the deadline between GETs (the server answers
        // a held GET within its ping interval at the latest).
        let deadline = ContinuousClock.now + limit
        var seen: [String] = []
        var batch = unread.withLock { unread in
            defer { unread.removeAll() }
            return unread
        }
        while true {
            while !batch.isEmpty {
                let packet = batch.removeFirst()
                if packet == "2" { try await post("3") }
                seen.append(packet)
                if predicate(packet) {
                    unread.withLock { $0 = batch }
                    return seen
                }
            }
            guard ContinuousClock.now < deadline else { break }
            batch = try await get()
        }
        throw ConformanceFailure("did not get a packet (seen: \(seen))")
    }

    /// CONNECTs the default namespace with `auth`; returns the server's answer packet.
    func connect(auth: String = "") async throws -> String {
        let response = try await post("40" + auth)
        guard String(buffer: response.body) == "ok" else { throw ConformanceFailure("did not get POST ok") }
        return try await collect(until: { $0.hasPrefix("4") }).last!
    }
}

/// The event name and data of a `42["name",data]` packet.
func socketIOEvent(_ packet: String) -> (name: String, data: JSONValue?)? {
    guard packet.hasPrefix("42"), let start = packet.firstIndex(of: "[") else { return nil }
    guard case .array(let items) = try? JSONDecoder().decode(JSONValue.self, from: Data(packet[start...].utf8)),
        let name = items.first?.stringValue
    else { return nil }
    return (name, items.count > 1 ? items[1] : nil)
}
