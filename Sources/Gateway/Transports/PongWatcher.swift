import NIOCore
import NIOWebSocket

/// Notes the client's pong frames for the watchdog's WebSocket pings.
///
/// The watchdog pings every WebSocket of the gateway from its one sweep (a ping task per
/// connection would keep a stack of its own for the connection's life) and drops a connection
/// whose client has not answered the previous ping within the ping interval. hummingbird-websocket
/// consumes pongs out of sight, so this handler sits right after the frame decoder and notes
/// them on their way through.
final class PongWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    private let progress: ConnectionWatchdog.Progress

    init(_ progress: ConnectionWatchdog.Progress) { self.progress = progress }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).opcode == .pong { progress.pongReceived() }
        context.fireChannelRead(data)
    }

    /// Installs a watcher on an upgraded WebSocket channel; the progress answers pings from then on.
    static func install(on channel: any Channel, for progress: ConnectionWatchdog.Progress) {
        channel.eventLoop.execute {
            guard (try? channel.pipeline.syncOperations.addAfterWebSocketDecoder(PongWatcher(progress))) != nil
            else { return }
            progress.pongsWatched()
        }
    }
}
