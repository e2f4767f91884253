import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP connection that sends raw bytes when told and collects what comes back, for
/// exchanges in steps (send a request head, wait for an interim answer, send the body).
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: NIOLockedValueBox<[UInt8]>

    private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RawConnection {
        let received = NIOLockedValueBox([UInt8]())
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Everything received so far.
    var text: String { String(decoding: received.withLockedValue { $0 }, as: UTF8.self) }

    /// Waits (in short pauses) until what was received contains `needle` `count` times.
    func waitFor(_ needle: String, count: Int = 1) async throws {
        while text.components(separatedBy: needle).count - 1 < count { try await Task.sleep(for: .milliseconds(5)) }
    }

    /// Everything received, once the server closed the connection.
    func textWhenClosed() async throws -> String {
        try await channel.closeFuture.get()
        return text
    }

    func close() async {
        try? await channel.close()
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
