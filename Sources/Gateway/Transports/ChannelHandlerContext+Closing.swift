import NIOCore

extension ChannelHandlerContext {
    /// How long a connection's last write may wait for a client that does not read.
    static let lastWriteTimeout = TimeAmount.seconds(5)

    /// Writes and flushes `data` (a close frame, the end of a stream), then closes the channel
    /// once it is written, or after ``lastWriteTimeout`` if the client does not take it: a full
    /// socket would otherwise keep the connection, and a graceful shutdown waiting for it, forever.
    func writeAndFlushThenClose(_ data: NIOAny) {
        let channel = self.channel
        let timeout = eventLoop.scheduleTask(in: Self.lastWriteTimeout) { channel.close(promise: nil) }
        writeAndFlush(data).whenComplete { _ in
            timeout.cancel()
            channel.close(promise: nil)
        }
    }
}
