import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sends raw bytes on a fresh connection and returns what the server sent back until it closed
/// the connection: for what ordinary clients do not send (several requests at once).
enum RawHTTPExchange {
    static func send(_ request: String, port: Int) async throws -> String {
        let collected = NIOLockedValueBox([UInt8]())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(collected))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request))
        try await channel.closeFuture.get()
        return String(decoding: collected.withLockedValue { $0 }, as: UTF8.self)
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let bytes: NIOLockedValueBox<[UInt8]>
        init(_ bytes: NIOLockedValueBox<[UInt8]>) { self.bytes = bytes }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            bytes.withLockedValue { $0 += buffer.readableBytesView }
        }
    }
}
