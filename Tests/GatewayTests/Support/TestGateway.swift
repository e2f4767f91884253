import Broker
import BrokerTesting
import Foundation
import Gateway
import Hummingbird
import HummingbirdTesting
import Logging
import MemoryBackend
import ServiceLifecycle

/// Awaits `condition` (checked after each short pause) until `limit`.
func eventually(
    _ what: String, within limit: Duration = .seconds(10), _ condition: @escaping @Sendable () async throws -> Bool
) async throws {
    try await withDeadline(what, within: limit) {
        while try await !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}

/// A gateway on the memory backend, with the real job router and, when asked, the real demo
/// agent in process: the `switchboard serve` demo, minus the command line.
struct TestGateway: Sendable {
    static let secret = "switchboard-test-secret-0123456789abcdef"
    static let logger: Logger = {
        var logger = Logger(label: "gateway-tests")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return logger
    }()

    let broker: any Broker
    let memory: MemoryBroker?
    let router: JobRouter
    let gateway: Gateway
    let authority: TokenAuthority
    let withAgent: Bool

    /// - Parameter broker: another broker (a failing one, say); the memory backend by default.
    init(
        configuration: GatewayConfiguration = GatewayConfiguration(port: 0), withAgent: Bool = true,
        broker: (any Broker)? = nil, outboundCapacity: Int = 256, outboundByteCapacity: Int = 8 << 20,
        demoUser: String? = nil
    ) async throws {
        let memory = broker == nil ? MemoryBroker() : nil
        let broker = broker ?? memory!
        self.memory = memory
        self.broker = broker
        self.withAgent = withAgent
        authority = try await TokenAuthority(secret: Self.secret)
        router = JobRouter(
            broker: broker,
            registry: SessionRegistry(outboundCapacity: outboundCapacity, outboundByteCapacity: outboundByteCapacity),
            logger: Self.logger)
        gateway = Gateway(
            configuration: configuration, router: router, authority: authority, logger: Self.logger,
            demoUser: demoUser)
    }

    func token(_ user: String, lifetime: Duration? = .seconds(3_600)) async throws -> String {
        try await authority.issue(userId: user, lifetime: lifetime)
    }

    /// The application with the router (and agent) running beside the server.
    func application() -> some ApplicationProtocol {
        var services: [any Service] = []
        if let memory { services.append(memory) }
        services.append(router)
        if withAgent {
            services.append(
                Agent(
                    broker: broker, handler: DemoRebalanceHandler(),
                    configuration: AgentConfiguration(visibilityTimeout: .seconds(5)), logger: Self.logger))
        }
        return gateway.makeApplication(services: services)
    }

    /// Runs `body` against the live server once the router listens.
    @discardableResult
    func live<Value: Sendable>(
        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Value
    ) async throws -> Value {
        let router = self.router
        return try await application().test(.live) { client in
            await router.waitUntilSubscribed()
            return try await body(client)
        }
    }

    /// Runs `body` with the port of the application served as `switchboard serve` serves it.
    /// HummingbirdTesting's live server rebuilds the server configuration and leaves out the
    /// connection limit; this runs the application's own.
    func serving<Value: Sendable>(_ body: @escaping @Sendable (Int) async throws -> Value) async throws -> Value {
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let served = Gateway(
            configuration: gateway.configuration, router: router, authority: authority, logger: Self.logger,
            onServerRunning: { port.yield($0) })
        let group = ServiceGroup(services: [served.makeApplication(services: [router])], logger: Self.logger)
        return try await withThrowingTaskGroup(of: Value?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let bound = await iterator.next() else { throw CancellationError() }
            await router.waitUntilSubscribed()
            do {
                let value = try await body(bound)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return value
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// Creates a job over HTTP; returns its id.
    func createJob(
        _ client: some TestClientProtocol, token: String, payload: String = #"{"amount":1000}"#
    ) async throws -> String {
        let response = try await client.execute(
            uri: "/api/v1/agent/rebalance", method: .post,
            headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
            body: ByteBuffer(string: payload))
        guard response.status == .created,
            case .object(let members) = response.json,
            let jobId = members["jobId"]?.stringValue
        else {
            throw ConformanceFailure("did not get job creation (got \(response.status))")
        }
        return jobId
    }
}

extension TestResponse {
    /// The body as JSON.
    var json: JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
    }
}
