import Broker
import NIOCore
import NIOWebSocket
import Synchronization

/// Writes an Engine.IO session's frames to its WebSocket from the channel's event loop: no task
/// waits to write them.
///
/// A writer task per connection would keep its own stack slabs (the depth of the deepest write
/// it ever made) for the connection's whole life. The session hands frames to the link
/// (``WebSocketLink/send``), which writes them here in order; each written frame is reported
/// (`written`) so that the session's in-flight count, and with it the event pump, goes on. While
/// frames wait on a channel that is not writable, the write counts as blocked for the
/// ``ConnectionWatchdog``, which drops the connection after the stall timeout.
///
/// When the session is done with the link (``WebSocketLink/finish``), frames already handed over
/// are written, then the transport's reader is woken with an empty binary frame: it finds the
/// link finished and ends the WebSocket.
final class EngineIOFramePusher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// What the reader's task checks: whether the session is done with the link.
    final class Link: Sendable {
        private let finishedFlag = Atomic<Bool>(false)
        var isFinished: Bool { finishedFlag.load(ordering: .acquiring) }
        fileprivate func finish() -> Bool {
            !finishedFlag.exchange(true, ordering: .acquiringAndReleasing)
        }
    }

    private let progress: ConnectionWatchdog.Progress
    private let written: @Sendable () -> Void
    private var context: ChannelHandlerContext?
    private var pending = 0
    private var finished = false

    init(progress: ConnectionWatchdog.Progress, written: @escaping @Sendable () -> Void) {
        self.progress = progress
        self.written = written
    }

    /// Adds a pusher to an upgraded WebSocket channel, right after the frame decoder; returns the
    /// link's `send` and `finish`, and the state the reader checks.
    static func install(
        on channel: any Channel, progress: ConnectionWatchdog.Progress, written: @escaping @Sendable () -> Void
    ) async throws -> (
        send: @Sendable (EngineIOFrame) -> Void, finish: @Sendable () -> Void, link: Link
    ) {
        let pusher = try await channel.eventLoop.submit {
            let pusher = EngineIOFramePusher(progress: progress, written: written)
            try channel.pipeline.syncOperations.addAfterWebSocketDecoder(pusher)
            return NIOLoopBound(pusher, eventLoop: channel.eventLoop)
        }.get()
        let eventLoop = channel.eventLoop
        let link = Link()
        return (
            send: { frame in eventLoop.execute { pusher.value.write(frame) } },
            finish: { if link.finish() { eventLoop.execute { pusher.value.finish() } } },
            link: link
        )
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        noteProgress()
        context.fireChannelWritabilityChanged()
    }

    private func write(_ frame: EngineIOFrame) {
        guard let context, !finished else { return }
        let opcode: WebSocketOpcode
        switch frame {
        case .text: opcode = .text
        case .binary: opcode = .binary
        }
        let data = context.channel.allocator.buffer(bytes: frame.bytes)
        let promise = context.eventLoop.makePromise(of: Void.self)
        pending += 1
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            pending -= 1
            noteProgress()
            if case .success = result { written() }
        }
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: opcode, data: data)), promise: promise)
        noteProgress()
    }

    private func finish() {
        guard let context, !finished else { return }
        finished = true
        context.fireChannelRead(wrapInboundOut(WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer())))
    }

    private func noteProgress() {
        progress.noteBlocked(pending > 0 && context?.channel.isWritable == false)
    }
}
