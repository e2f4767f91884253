import Broker
import Hummingbird
import NIOCore

/// A WebSocket route of the gateway (`/ws`, `/socket.io/`): the path it serves, and the check
/// of an upgrade request, which either refuses it (throwing a ``GatewayError``: the client gets
/// its status and JSON body, and no upgrade) or says how to serve the connection.
struct WebSocketEndpoint: Sendable {
    /// The request path served, with or without a trailing slash.
    let path: String
    /// Decides on an upgrade request; runs in a task before the upgrade is answered.
    let accept: @Sendable (Request, any Channel) async throws -> WebSocketAcceptance

    func serves(_ requestPath: String) -> Bool {
        requestPath == path || requestPath == path + "/"
    }
}

/// How an accepted WebSocket is served.
struct WebSocketAcceptance: Sendable {
    /// The connection's label for logs and the watchdog.
    var label: String
    /// The most bytes one client message may have, fragments joined.
    var maxMessageSize: Int
    /// Makes the connection's service, on the channel's event loop, once upgraded.
    var makeService: @Sendable () -> any WebSocketService
}
