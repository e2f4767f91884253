public import Hummingbird
public import NIOCore

/// The request context of every gateway route.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection, so a transport can drop a client that stopped reading (see
    /// ``ConnectionWatchdog``) even while a write to it is blocked.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
