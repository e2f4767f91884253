import NIOCore

/// One side of a byte relay between two channels on the same event loop: what one side reads,
/// the other writes. A side reads only while its partner's channel can take more (so a slow
/// end holds the fast one back instead of buffering without bound), and when either channel
/// closes or fails, both close.
final class Relay: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: Relay?
    private var context: ChannelHandlerContext?
    private var readHeld = false
    private let fault: TunnelFault?

    private init(fault: TunnelFault?) {
        self.fault = fault
    }

    /// Two linked sides, to add one to each channel's pipeline (on their common event loop);
    /// the errors either side catches are kept in `fault`, for the connection's error message.
    static func pair(fault: TunnelFault? = nil) -> (Relay, Relay) {
        let first = Relay(fault: fault)
        let second = Relay(fault: fault)
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.write(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Kept before closing: the other end sees the close only after this.
        fault?.record(error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable ?? false {
            context.read()
        } else {
            readHeld = true
        }
    }

    // MARK: Called by the partner

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func flush() {
        context?.flush()
    }

    private func close() {
        context?.close(promise: nil)
    }

    private func resumeReading() {
        guard readHeld, let context else { return }
        readHeld = false
        context.read()
    }
}
