import NIOCore
import NIOPosix

/// A WebSocket client that upgrades, may send a few frames, and then never reads: the socket
/// buffers between it and the server fill, and the server's writes to it block. It speaks the
/// protocol by hand (the test framework's client always reads).
struct StalledWebSocketClient {
    let channel: any Channel

    /// Connects (with reading off) and sends the upgrade request for `path`.
    static func connect(port: Int, path: String) async throws -> StalledWebSocketClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .connect(host: "127.0.0.1", port: port).get()
        let request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        return StalledWebSocketClient(channel: channel)
    }

    /// Sends one short text frame (masked with a zero key, as a client must mask).
    func send(text: String) async throws {
        let payload = Array(text.utf8)
        precondition(payload.count < 126, "short frames only")
        var frame = ByteBuffer(bytes: [0x81, 0x80 | UInt8(payload.count), 0, 0, 0, 0])
        frame.writeBytes(payload)
        try await channel.writeAndFlush(frame)
    }

    func close() async {
        try? await channel.close()
    }
}
