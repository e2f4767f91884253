public import Hummingbird
public import HummingbirdWebSocket
public import Logging
public import NIOCore

/// The request context of every gateway route; it can carry a WebSocket upgrade, so the same
/// router serves `/ws` (and, later, `/socket.io/`) beside the HTTP API.
public struct GatewayRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The connection, so a transport can drop a client that stopped reading (see
    /// ``ConnectionWatchdog``) even while a write to it is blocked.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channel = source.channel
    }
}
