public import Hummingbird
public import HummingbirdWebSocket
public import Logging

/// The request context of every gateway route; it can carry a WebSocket upgrade, so the same
/// router serves `/ws` (and, later, `/socket.io/`) beside the HTTP API.
public struct GatewayRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
    }
}
