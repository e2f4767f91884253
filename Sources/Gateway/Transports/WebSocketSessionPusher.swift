import Broker
import NIOCore
import NIOWebSocket

/// Writes a `/ws` session's events from the connection's event loop, as they arrive: no task
/// waits on the session.
///
/// A task per connection for writing would keep its own stack slabs (a few kilobytes, the depth
/// of the deepest write it ever made) for the connection's whole life. Instead the session wakes
/// this handler (``Session/onAvailable(_:)``) when events wait, and it writes them while the
/// channel is writable, resuming when it becomes writable again. While events wait on a channel
/// that is not writable, the write counts as blocked for the ``ConnectionWatchdog``, which
/// drops the connection after the stall timeout; a client too slow for that overflows its
/// session and is disconnected as a slow consumer.
///
/// When the session ends for the server's reasons (slow consumer, shutdown), the handler wakes
/// the transport's reader with an empty binary frame, which finds the session closed and ends the
/// connection with the right close code.
final class WebSocketSessionPusher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let session: Session
    private let progress: ConnectionWatchdog.Progress
    private let metrics: GatewayMetrics
    /// The `connected` frame, written first.
    private var opening: String?
    private var context: ChannelHandlerContext?
    private var ended = false

    init(session: Session, progress: ConnectionWatchdog.Progress, metrics: GatewayMetrics, opening: String) {
        self.session = session
        self.progress = progress
        self.metrics = metrics
        self.opening = opening
    }

    /// Adds a pusher to an upgraded WebSocket channel, right after the frame decoder, and starts
    /// it: the `connected` frame, then what the session holds, then what arrives.
    static func start(
        on channel: any Channel, session: Session, progress: ConnectionWatchdog.Progress, metrics: GatewayMetrics,
        opening: String
    ) async throws {
        let pusher = try await channel.eventLoop.submit {
            let pusher = WebSocketSessionPusher(session: session, progress: progress, metrics: metrics, opening: opening)
            try channel.pipeline.syncOperations.addAfterWebSocketDecoder(pusher)
            pusher.drain()
            return NIOLoopBound(pusher, eventLoop: channel.eventLoop)
        }.get()
        let eventLoop = channel.eventLoop
        session.onAvailable {
            eventLoop.execute { pusher.value.drain() }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what waits while the channel takes it.
    func drain() {
        guard let context, !ended else { return }
        if let opening {
            self.opening = nil
            write(opening, context: context)
            context.flush()
        }
        while context.channel.isWritable {
            let events = session.take(max: 64)
            if events.isEmpty { break }
            for event in events {
                let frame = ServerFrame.event(
                    type: event.name, payload: event.dataJSON, eventId: event.eventId?.description,
                    ts: event.timestamp.iso8601)
                write(frame, context: context)
            }
            context.flush()
            metrics.delivered(.websocket, count: events.count)
        }
        progress.noteBlocked(!context.channel.isWritable && session.bufferedCount > 0)
        if let reason = session.closeReason, reason != .closed {
            ended = true
            context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer())))
        }
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        let data = context.channel.allocator.buffer(string: text)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: data)), promise: nil)
    }
}
