extension JSONValue {
    /// The value as compact JSON text, object keys sorted (deterministic, so equal values give
    /// equal bytes). Written by hand: events are serialized once per event and node, and this
    /// is several times faster than `JSONEncoder` for the small objects events carry.
    public var jsonText: String {
        var output = [UInt8]()
        output.reserveCapacity(128)
        write(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The value as compact JSON bytes (see ``jsonText``).
    public var jsonBytes: [UInt8] {
        var output = [UInt8]()
        output.reserveCapacity(128)
        write(into: &output)
        return output
    }

    /// Parses JSON text (any top-level value), strictly (RFC 8259); see `parse(utf8:)`.
    /// - Throws: ``JSONSyntaxError`` saying where and why when `bytes` are not JSON.
    public init(parsing bytes: [UInt8]) throws(JSONSyntaxError) {
        self = try JSONValue.parse(utf8: bytes)
    }

    /// Appends the value's compact JSON to `output`.
    public func write(into output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): output.append(contentsOf: String(value).utf8)
        case .number(let value):
            if value.isFinite {
                JSONNumberText.append(value, to: &output)
            } else {
                output.append(contentsOf: "null".utf8)  // JSON has no NaN or infinity
            }
        case .string(let value): Self.writeString(value, into: &output)
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                value.write(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            if members.count <= Self.smallObject {
                Self.writeSmall(members, into: &output)
            } else {
                // Sorting the members, not the keys: no second hash lookup per member.
                for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                    if index > 0 { output.append(UInt8(ascii: ",")) }
                    Self.writeString(member.key, into: &output)
                    output.append(UInt8(ascii: ":"))
                    member.value.write(into: &output)
                }
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Objects up to this many members are sorted on the stack (results, payloads, events).
    private static let smallObject = 16

    /// The members of a small object in key order, sorted by insertion into a stack buffer of
    /// indices: no array of members on the heap, no copies of the values.
    private static func writeSmall(_ members: [String: JSONValue], into output: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: Dictionary<String, JSONValue>.Index.self, capacity: members.count) { order in
            var count = 0
            var index = members.startIndex
            while index != members.endIndex {
                order.initializeElement(at: count, to: index)
                var slot = count
                while slot > 0, members.keys[order[slot]] < members.keys[order[slot - 1]] {
                    order.swapAt(slot, slot - 1)
                    slot -= 1
                }
                count += 1
                members.formIndex(after: &index)
            }
            for position in 0..<count {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                writeString(members.keys[order[position]], into: &output)
                output.append(UInt8(ascii: ":"))
                members.values[order[position]].write(into: &output)
            }
            _ = UnsafeMutableBufferPointer(rebasing: order[..<count]).deinitialize()
        }
    }
}
