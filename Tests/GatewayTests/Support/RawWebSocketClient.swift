import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A WebSocket client that speaks the protocol by hand, frame by frame, so tests can send what
/// ordinary clients never do (fragments, interleaved pings, close codes) and see every frame the
/// server sends, control frames included.
final class RawWebSocketClient: Sendable {
    /// A frame from the server (never masked).
    struct Frame: Sendable, Equatable {
        var fin: Bool
        var opcode: UInt8
        var payload: [UInt8]

        var text: String { String(decoding: payload, as: UTF8.self) }
        /// The status code of a close frame.
        var closeCode: UInt16? {
            guard opcode == 0x8, payload.count >= 2 else { return nil }
            return UInt16(payload[0]) << 8 | UInt16(payload[1])
        }
    }

    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects and upgrades to `path`; throws unless the server answers 101.
    ///
    /// - Parameters:
    ///   - earlier: requests sent first on the same keep-alive connection (bodiless `GET`s),
    ///     each answered before the upgrade is sent; their response heads are returned in
    ///     `earlierResponses`.
    ///   - pipelined: sends the earlier requests and the upgrade at once, without waiting.
    static func connect(
        port: Int, path: String, after earlier: [String] = [], pipelined: Bool = false,
        earlierResponses: NIOLockedValueBox<[String]>? = nil
    ) async throws -> RawWebSocketClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let client = RawWebSocketClient(channel: channel, collector: collector)
        let request =
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        let earlierRequests = earlier.map { "GET \($0) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n" }
        if pipelined {
            try await channel.writeAndFlush(ByteBuffer(string: earlierRequests.joined() + request))
            for _ in earlierRequests { try await client.skipResponse(into: earlierResponses) }
        } else {
            for earlierRequest in earlierRequests {
                try await channel.writeAndFlush(ByteBuffer(string: earlierRequest))
                try await client.skipResponse(into: earlierResponses)
            }
            try await channel.writeAndFlush(ByteBuffer(string: request))
        }
        let head = try await client.responseHead()
        guard head.hasPrefix("HTTP/1.1 101") else { throw RawClientError.notUpgraded(head) }
        return client
    }

    /// Reads one whole response (framed by `Content-Length`) and notes its head.
    private func skipResponse(into heads: NIOLockedValueBox<[String]>?) async throws {
        let head = try await responseHead()
        heads?.withLockedValue { $0.append(head) }
        let lengthLine = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
        let length = lengthLine.flatMap { Int($0.dropFirst("content-length:".count).filter { $0 != " " }) } ?? 0
        while !collector.drop(length) {
            if collector.isClosed { throw RawClientError.closedBeforeResponse }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Sends one frame, masked as a client must (unless `masked` is false, which a client must not).
    func send(opcode: UInt8, fin: Bool = true, payload: [UInt8], masked: Bool = true) async throws {
        var frame = ByteBuffer()
        frame.writeInteger((fin ? 0x80 : 0) | opcode)
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            frame.writeInteger(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(maskBit | 126)
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(maskBit | 127)
            frame.writeInteger(UInt64(payload.count))
        }
        guard masked else {
            frame.writeBytes(payload)
            return try await channel.writeAndFlush(frame)
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame.writeBytes(mask)
        frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        try await channel.writeAndFlush(frame)
    }

    func send(text: String, opcode: UInt8 = 0x1, fin: Bool = true) async throws {
        try await send(opcode: opcode, fin: fin, payload: Array(text.utf8))
    }

    /// The next frame from the server; `nil` once the server closed the connection.
    func next() async throws -> Frame? {
        while true {
            if let frame = collector.takeFrame() { return frame }
            if collector.isClosed { return collector.takeFrame() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The next frame that is not a ping.
    func nextNonPing() async throws -> Frame? {
        while let frame = try await next() {
            if frame.opcode != 0x9 { return frame }
        }
        return nil
    }

    /// Answers the server's close frame with `code`, as a client must (RFC 6455 §5.5.1).
    func answerClose(code: UInt16) async throws {
        try await send(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
    }

    /// Whether the server closed the TCP connection.
    var isClosed: Bool { collector.isClosed }

    /// Waits until the server closed the TCP connection.
    func waitUntilClosed() async throws {
        try await channel.closeFuture.get()
    }

    func close() async {
        try? await channel.close()
    }

    private func responseHead() async throws -> String {
        while true {
            if let head = collector.takeHead() { return head }
            if collector.isClosed { throw RawClientError.closedBeforeResponse }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    enum RawClientError: Error {
        case notUpgraded(String)
        case closedBeforeResponse
    }

    /// Collects the bytes the server sends.
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let state = NIOLockedValueBox((bytes: [UInt8](), closed: false))

        var isClosed: Bool { state.withLockedValue { $0.closed } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.withLockedValue { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLockedValue { $0.closed = true }
        }

        /// The HTTP response head, once whole.
        func takeHead() -> String? {
            state.withLockedValue { state in
                let end: [UInt8] = Array("\r\n\r\n".utf8)
                guard state.bytes.count >= 4,
                    let index = (0...(state.bytes.count - 4)).first(where: { Array(state.bytes[$0..<$0 + 4]) == end })
                else { return nil }
                let head = String(decoding: state.bytes[..<index], as: UTF8.self)
                state.bytes.removeFirst(index + 4)
                return head
            }
        }

        /// Drops the first `count` bytes, once there are that many.
        func drop(_ count: Int) -> Bool {
            state.withLockedValue { state in
                guard state.bytes.count >= count else { return false }
                state.bytes.removeFirst(count)
                return true
            }
        }

        /// One whole frame, if the bytes hold one.
        func takeFrame() -> Frame? {
            state.withLockedValue { state in
                let bytes = state.bytes
                guard bytes.count >= 2 else { return nil }
                var length = Int(bytes[1] & 0x7F)
                var offset = 2
                if length == 126 {
                    guard bytes.count >= 4 else { return nil }
                    length = Int(bytes[2]) << 8 | Int(bytes[3])
                    offset = 4
                } else if length == 127 {
                    guard bytes.count >= 10 else { return nil }
                    length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
                    offset = 10
                }
                guard bytes.count >= offset + length else { return nil }
                let frame = Frame(
                    fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0F, payload: Array(bytes[offset..<offset + length]))
                state.bytes.removeFirst(offset + length)
                return frame
            }
        }
    }
}
