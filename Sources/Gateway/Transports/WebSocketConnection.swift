import DequeModule
import NIOCore
import NIOWebSocket

/// What serves one upgraded WebSocket (the `/ws` session, a Socket.IO link). Every method is
/// called on the channel's event loop; returned work runs in a task of its own, and the
/// connection hands the service no other message until that work is done, so a service sees
/// its client's messages strictly in order.
protocol WebSocketService: AnyObject {
    /// The connection is open. Work returned here (a replay read, say) runs before any message.
    func opened(_ connection: WebSocketConnection) -> WebSocketWork?
    /// One whole message from the client (fragments joined, within the size limit).
    func received(_ message: WebSocketMessage, on connection: WebSocketConnection) -> WebSocketWork?
    /// The channel became writable again, or stopped being so.
    func writabilityChanged(on connection: WebSocketConnection)
    /// The server is shutting down: end the connection (with ``WebSocketConnection/close(_:reason:)``).
    func shutdown(_ connection: WebSocketConnection)
    /// The connection is gone (either side closed it); called once, last.
    func closed(_ connection: WebSocketConnection)
}

/// Async work a service asks for; it reaches the connection through its
/// ``WebSocketConnection/handle``.
typealias WebSocketWork = @Sendable () async -> Void

/// A message from the client.
enum WebSocketMessage {
    case text(ByteBuffer)
    case binary(ByteBuffer)
}

/// Serves one upgraded WebSocket from its event loop, with no task of its own.
///
/// hummingbird-websocket serves each connection from a task that lives as long as it does,
/// with an async channel wrapper, its buffers and the stack slabs the task ever grew: about
/// 20 KiB per idle connection before the gateway holds anything. This handler speaks the
/// protocol (RFC 6455) from the channel pipeline instead: it answers pings, notes pongs for the
/// ``ConnectionWatchdog``, joins fragments up to the message limit (closing with 1009 beyond),
/// refuses unmasked frames (1002), completes the close handshake either side starts, and hands
/// whole messages to its ``WebSocketService``. While the service's work for one message runs,
/// the next messages wait and the channel stops reading (TCP pushes back on a client that floods).
///
/// The decoder ahead of it (added by NIO's upgrader) refuses a single frame over the frame
/// limit, and NIO's protocol error handler closes with the matching code (1009, 1002).
final class WebSocketConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let channel: any Channel
    let eventLoop: any EventLoop
    let progress: ConnectionWatchdog.Progress
    /// Runs work in a task owned by the gateway; `false` when it stopped.
    let spawn: @Sendable (@escaping WebSocketWork) -> Bool
    private let maxMessageSize: Int
    private var service: (any WebSocketService)?
    private var context: ChannelHandlerContext?
    /// The fragments of a message being received, and its opcode.
    private var fragments: (opcode: WebSocketOpcode, data: ByteBuffer)?
    /// Whole messages waiting while the service's work runs.
    private var waiting = Deque<WebSocketMessage>()
    private var working = false
    private var readHeld = false
    /// A close frame was sent or received: no more messages are read or written.
    private var closing = false
    /// The server sent a close frame and waits for the client's (RFC 6455 §5.5.1) before it
    /// closes the TCP connection: closing at once would answer the client's in-flight frames
    /// with a reset, which it may read before our close frame. Ends after
    /// ``ChannelHandlerContext/lastWriteTimeout`` if no answer comes.
    private var closeTimeout: Scheduled<Void>?

    /// - Parameters:
    ///   - maxMessageSize: the most bytes one message may have, fragments joined.
    ///   - spawn: runs a service's work in a task owned by the gateway; `false` when it stopped.
    init(
        service: any WebSocketService, channel: any Channel, progress: ConnectionWatchdog.Progress,
        maxMessageSize: Int, spawn: @escaping @Sendable (@escaping WebSocketWork) -> Bool
    ) {
        self.service = service
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.progress = progress
        self.maxMessageSize = maxMessageSize
        self.spawn = spawn
    }

    // MARK: For services (on the event loop)

    /// Whether the channel takes more writes now.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Whether the connection still sends (no close frame went out or came in).
    var isOpen: Bool { context != nil && !closing }

    /// Writes a text message; `flush()` sends what was written.
    func write(text: String, promise: EventLoopPromise<Void>? = nil) {
        guard let context, !closing else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(.text, context.channel.allocator.buffer(string: text), promise: promise, context: context)
    }

    /// Writes a text message that `build` writes into a buffer of about `capacity` bytes, so
    /// the message need not be made as a string first.
    func writeText(capacity: Int, _ build: (inout ByteBuffer) -> Void) {
        guard let context, !closing else { return }
        var buffer = context.channel.allocator.buffer(capacity: capacity)
        build(&buffer)
        write(.text, buffer, promise: nil, context: context)
    }

    /// Writes a message of raw bytes (text or binary); `flush()` sends what was written.
    func write(bytes: [UInt8], binary: Bool, promise: EventLoopPromise<Void>? = nil) {
        guard let context, !closing else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(binary ? .binary : .text, context.channel.allocator.buffer(bytes: bytes), promise: promise, context: context)
    }

    func flush() {
        context?.flush()
    }

    /// Sends a close frame with `code` and `reason`; the connection closes when the client answers
    /// with its own, closes its side, or has not answered within
    /// ``ChannelHandlerContext/lastWriteTimeout``.
    func close(_ code: WebSocketErrorCode, reason: String = "") {
        guard let context, !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenFailure { _ in channel.close(promise: nil) }
        closeTimeout = context.eventLoop.scheduleTask(in: ChannelHandlerContext.lastWriteTimeout) {
            channel.close(promise: nil)
        }
        // Reads held for the service resume: the answer must be read.
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// Closes the connection without a close frame (for a client that does not read).
    func abort() {
        closing = true
        context?.close(promise: nil)
    }

    /// The service, while the connection is open (`nil` once it closed).
    func service<Service: WebSocketService>(as type: Service.Type) -> Service? {
        service as? Service
    }

    /// A reference to this connection for work running elsewhere.
    var handle: Handle { Handle(bound: NIOLoopBound(self, eventLoop: eventLoop)) }

    /// Reaches a connection from any thread, on its event loop.
    struct Handle: Sendable {
        fileprivate let bound: NIOLoopBound<WebSocketConnection>

        /// Runs `body` with the connection on its event loop, later: never inside the caller
        /// (which may hold a lock a service's work needs, such as the registry's).
        func onEventLoop(_ body: @escaping @Sendable (WebSocketConnection) -> Void) {
            let bound = self.bound
            bound.eventLoop.execute { body(bound.value) }
        }
    }

    private func write(
        _ opcode: WebSocketOpcode, _ data: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext
    ) {
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: opcode, data: data)), promise: promise)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        progress.pongsWatched()
        if let service, let work = service.opened(self) { run(work) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closing else {
            // After our close frame, only the client's answer matters.
            if closeTimeout != nil, frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        // RFC 6455 §5.1: a server must close the connection on a frame its client did not mask.
        guard frame.maskKey != nil else { return close(.protocolError, reason: "client frames must be masked") }
        // §5.2: no extension is negotiated, so the reserved bits must be clear (a compressed
        // frame from a client that assumes permessage-deflate would otherwise be read as text).
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return close(.protocolError, reason: "reserved bits set") }
        switch frame.opcode {
        case .ping:
            guard frame.fin else { return close(.protocolError, reason: "fragmented ping") }
            context.writeAndFlush(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            progress.pongReceived()
        case .connectionClose:
            // Answer with the client's code (RFC 6455 §5.5.1), then close; a close frame that
            // breaks §5.5.1 or §7.4 is answered with 1002 (1007 for a reason not in UTF-8).
            closing = true
            var reply = context.channel.allocator.buffer(capacity: 2)
            if let code = Self.answer(toClose: frame.unmaskedData) { reply.write(webSocketErrorCode: code) }
            // Both close frames are out: the server closes the TCP connection (RFC 6455 §7.1.1).
            context.writeAndFlushThenClose(
                wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
        case .text, .binary:
            guard fragments == nil else { return close(.protocolError, reason: "new message inside a fragmented one") }
            if frame.fin {
                guard frame.length <= maxMessageSize else { return close(.messageTooLarge, reason: "message too big") }
                deliver(frame.opcode, frame.unmaskedData)
            } else {
                fragments = (frame.opcode, frame.unmaskedData)
                if frame.length > maxMessageSize { close(.messageTooLarge, reason: "message too big") }
            }
        case .continuation:
            guard case (let opcode, var data)? = fragments else { return close(.protocolError, reason: "continuation without a message") }
            guard data.readableBytes + frame.length <= maxMessageSize else {
                fragments = nil
                return close(.messageTooLarge, reason: "message too big")
            }
            fragments = nil  // so that the buffer below is uniquely referenced
            var more = frame.unmaskedData
            data.writeBuffer(&more)
            if frame.fin {
                deliver(opcode, data)
            } else {
                fragments = (opcode, data)
            }
        default:
            close(.protocolError, reason: "unknown opcode")
        }
    }

    /// The code to answer a client's close frame with: its own, `nil` when it has none, or
    /// 1002 when the frame is malformed (one byte long, or a code that may not be sent: RFC 6455
    /// §7.4, below 1000, 1004–1006, 1015–2999, 5000 and up), 1007 when its reason is not UTF-8.
    private static func answer(toClose payload: ByteBuffer) -> WebSocketErrorCode? {
        var payload = payload
        guard payload.readableBytes != 1 else { return .protocolError }
        guard let raw = payload.readInteger(as: UInt16.self) else { return nil }
        switch raw {
        case 1000...1003, 1007...1014, 3000...4999: break
        default: return .protocolError
        }
        guard String(validating: payload.readableBytesView, as: UTF8.self) != nil else { return .dataInconsistentWithMessage }
        return WebSocketErrorCode(codeNumber: Int(raw))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        service?.writabilityChanged(on: self)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent, let service, !closing {
            service.shutdown(self)
        } else if case .inputClosed = event as? ChannelEvent {
            // The client closed its side without a close frame (the server allows half-closure,
            // so no close comes by itself): nothing more can be said.
            closing = true
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Protocol errors were answered by NIO's error handler ahead of us; anything else ends
        // the connection.
        closing = true
        context.close(promise: nil)
    }

    /// Holds reads while messages wait for the service: the client's sends push back.
    func read(context: ChannelHandlerContext) {
        if !closing, working || !waiting.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    // MARK: Messages in order

    private func deliver(_ opcode: WebSocketOpcode, _ data: ByteBuffer) {
        // RFC 6455 §8.1: a text message that is not UTF-8 fails the connection (1007), rather
        // than reaching the service with its bytes replaced.
        if opcode == .text, String(validating: data.readableBytesView, as: UTF8.self) == nil {
            return close(.dataInconsistentWithMessage, reason: "text message is not valid UTF-8")
        }
        waiting.append(opcode == .binary ? .binary(data) : .text(data))
        handleWaiting()
    }

    private func handleWaiting() {
        while !working, !closing, let service, let message = waiting.popFirst() {
            if let work = service.received(message, on: self) { run(work) }
        }
        if !working, waiting.isEmpty, readHeld, let context {
            readHeld = false
            context.read()
        }
    }

    private func run(_ work: @escaping WebSocketWork) {
        working = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let eventLoop = self.eventLoop
        let started = spawn {
            await work()
            eventLoop.execute {
                bound.value.working = false
                bound.value.handleWaiting()
            }
        }
        if !started {
            // The gateway is stopping: nothing more will be served.
            working = false
            close(.goingAway, reason: "server shutting down")
        }
    }

    private func end() {
        closing = true
        closeTimeout?.cancel()
        closeTimeout = nil
        waiting.removeAll()
        fragments = nil
        guard let service else { return }
        self.service = nil
        service.closed(self)
    }
}
