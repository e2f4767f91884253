import NIOCore
import NIOWebSocket

extension ChannelPipeline.SynchronousOperations {
    /// Adds `added` right after the WebSocket frame decoder of an upgraded channel, where it
    /// sees every frame (pongs included) before hummingbird-websocket does, and may write frames.
    /// Call on the channel's event loop.
    /// - Throws: if the channel has no WebSocket frame decoder (not upgraded, or closed).
    func addAfterWebSocketDecoder(_ added: some ChannelHandler) throws {
        let decoder = try handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
        try addHandler(added, position: .after(decoder))
    }
}
