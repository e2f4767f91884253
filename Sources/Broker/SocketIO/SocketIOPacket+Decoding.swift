extension SocketIOPacket {
    /// Decodes a Socket.IO packet from the text of an Engine.IO message (without the `4`).
    ///
    /// For a binary packet this decodes the header; its `attachments` stay empty until the
    /// `attachmentCount` binary messages that follow are added (`SocketIOSession` does it).
    /// Every placeholder in the data is checked against the announced count here.
    public static func decode(_ text: [UInt8]) throws(SocketIOError) -> SocketIOPacket {
        guard let first = text.first else { throw .emptyPacket }
        guard first >= UInt8(ascii: "0"), let type = SocketIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownPacketType(first)
        }
        var index = 1

        var attachmentCount = 0
        if type.isBinary {
            let start = index
            while index < text.count, isDigit(text[index]) {
                attachmentCount = attachmentCount * 10 + Int(text[index] - UInt8(ascii: "0"))
                guard attachmentCount <= maximumAttachments else { throw .tooManyAttachments(attachmentCount) }
                index += 1
            }
            guard index > start, index < text.count, text[index] == UInt8(ascii: "-") else {
                throw .invalidAttachmentCount
            }
            index += 1
        }

        var namespace = "/"
        if index < text.count, text[index] == UInt8(ascii: "/") {
            let start = index
            while index < text.count, text[index] != UInt8(ascii: ",") { index += 1 }
            guard let name = String(validating: text[start..<index], as: UTF8.self) else { throw .invalidNamespace }
            namespace = name
            if index < text.count { index += 1 }  // the comma
        }

        var ackID: Int?
        if index < text.count, isDigit(text[index]) {
            var id = 0
            while index < text.count, isDigit(text[index]) {
                id = id * 10 + Int(text[index] - UInt8(ascii: "0"))
                guard id <= maximumAckID else { throw .ackIDOverflow }
                index += 1
            }
            ackID = id
        }

        var data: JSONValue?
        if index < text.count {
            do {
                data = try text.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                    try JSONValue.parse(UnsafeBufferPointer(rebasing: buffer[index...]))
                }
            } catch {
                throw .invalidJSON(JSONSyntaxError(offset: index + error.offset, reason: error.reason))
            }
        }

        var packet = SocketIOPacket(type: type, namespace: namespace, ackID: ackID, data: data)
        packet.attachmentCount = attachmentCount
        try packet.validate()
        return packet
    }

    /// Checks the data against what the packet type requires, as the reference parser does.
    func validate() throws(SocketIOError) {
        switch type {
        case .connect, .disconnect, .connectError:
            guard ackID == nil else { throw .unexpectedAckID(type) }
        default:
            break
        }
        switch type {
        case .connect:
            guard data == nil || data!.isObject else { throw .invalidPayload(type) }
        case .disconnect:
            guard data == nil else { throw .invalidPayload(type) }
        case .connectError:
            guard let data, data.isObject || data.stringValue != nil else { throw .invalidPayload(type) }
        case .event, .binaryEvent:
            guard case .array(let elements) = data, let name = elements.first?.stringValue else {
                throw .invalidPayload(type)
            }
            guard !Self.reservedEventNames.contains(name) else { throw .reservedEventName(name) }
        case .ack, .binaryAck:
            guard case .array = data else { throw .invalidPayload(type) }
            guard ackID != nil else { throw .missingAckID }
        }
        if type.isBinary {
            // The reference encoder numbers placeholders 0..<count, each once: anything else is a mismatch.
            var seen = [Bool](repeating: false, count: attachmentCount)
            guard let data, Self.collectPlaceholders(in: data, into: &seen), !seen.contains(false) else {
                throw .attachmentMismatch
            }
        }
    }

    /// Marks each placeholder's index in `seen`; `false` for an invalid, out-of-range or repeated one.
    static func collectPlaceholders(in value: JSONValue, into seen: inout [Bool]) -> Bool {
        switch value {
        case .array(let elements):
            for element in elements where !collectPlaceholders(in: element, into: &seen) { return false }
            return true
        case .object(let members):
            if members["_placeholder"] == .bool(true) {
                guard let index = placeholderIndex(value), index < seen.count, !seen[index] else { return false }
                seen[index] = true
                return true
            }
            for member in members.values where !collectPlaceholders(in: member, into: &seen) { return false }
            return true
        default:
            return true
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
