extension RedisBroker {
    /// The fields of `INFO section` (e.g. `"clients"`, `"server"`), for health pages and tests.
    public func serverInfo(_ section: String = "default") async throws -> [String: String] {
        let connection = try await commands.connection()
        var encoder = RESPEncoder()
        encoder.append("INFO", section)
        let reply = try await connection.send(encoder.bytes, replies: 1, timeout: configuration.commandTimeout)[0]
        guard let text = reply.text else {
            _ = try reply.reply()
            return [:]
        }
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }
}
