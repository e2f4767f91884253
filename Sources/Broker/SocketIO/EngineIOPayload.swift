/// HTTP long-polling payload framing (Engine.IO v4): packets joined by the record separator
/// `0x1E`; a binary message is written `b` followed by its base64.
public enum EngineIOPayload {
    /// The record separator between packets.
    public static let separator: UInt8 = 0x1E

    /// Decodes a polling POST body into its packets.
    ///
    /// - Throws: `.payloadTooLarge` if the body is over `maxPayload` bytes (checked before any
    ///   decoding), `.emptyPacket` for an empty body or element, the packet errors of
    ///   `EngineIOPacket.decode(text:)`, `.invalidBase64` for a bad binary element.
    public static func decode(_ body: [UInt8], maxPayload: Int) throws(EngineIOError) -> [EngineIOPacket] {
        guard body.count <= maxPayload else { throw .payloadTooLarge(size: body.count, limit: maxPayload) }
        guard !body.isEmpty else { throw .emptyPacket }
        var packets: [EngineIOPacket] = []
        var start = 0
        while start <= body.count {
            var end = start
            while end < body.count, body[end] != separator { end += 1 }
            let element = body[start..<end]
            if element.first == UInt8(ascii: "b") {
                guard let decoded = Base64.decode(element.dropFirst()) else { throw .invalidBase64 }
                packets.append(.binaryMessage(decoded))
            } else {
                packets.append(try EngineIOPacket.decode(text: element))
            }
            start = end + 1
        }
        return packets
    }

    /// Encodes frames as one polling GET response body.
    ///
    /// A single text frame is its own payload, so the common case shares the frame's bytes.
    public static func encode(_ frames: some Collection<EngineIOFrame>) -> [UInt8] {
        if frames.count == 1, case .text(let bytes) = frames.first! { return bytes }
        var body: [UInt8] = []
        body.reserveCapacity(frames.reduce(0) { $0 + encodedSize(of: $1) + 1 })
        for (index, frame) in frames.enumerated() {
            if index > 0 { body.append(separator) }
            append(frame, to: &body)
        }
        return body
    }

    /// The bytes `frame` takes in a polling payload (without the separator).
    public static func encodedSize(of frame: EngineIOFrame) -> Int {
        switch frame {
        case .text(let bytes): bytes.count
        case .binary(let bytes): 1 + Base64.encodedCount(bytes.count)
        }
    }

    static func append(_ frame: EngineIOFrame, to body: inout [UInt8]) {
        switch frame {
        case .text(let bytes):
            body.append(contentsOf: bytes)
        case .binary(let bytes):
            body.append(UInt8(ascii: "b"))
            Base64.encode(bytes, to: &body)
        }
    }
}

/// Standard base64 (RFC 4648 §4) on bytes, as Engine.IO uses for binary polling elements.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    static func encode(_ bytes: [UInt8], to output: inout [UInt8]) {
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let remaining = bytes.count - index
        guard remaining > 0 else { return }
        let second = remaining == 2 ? UInt32(bytes[index + 1]) : 0
        let chunk = UInt32(bytes[index]) << 16 | second << 8
        output.append(alphabet[Int(chunk >> 18 & 63)])
        output.append(alphabet[Int(chunk >> 12 & 63)])
        output.append(remaining == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
        output.append(UInt8(ascii: "="))
    }

    /// Decodes padded or unpadded base64; `nil` for any other byte, bad length or misplaced padding.
    static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var input = Array(text)
        if input.count % 4 == 0, input.last == UInt8(ascii: "=") {
            input.removeLast()
            if input.last == UInt8(ascii: "=") { input.removeLast() }
        }
        guard input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value = reverse[Int(byte)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero for the encoding to be canonical.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}
