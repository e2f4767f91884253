/// Sends raw bytes on a fresh connection and returns what the server sent back until it closed
/// the connection: for what ordinary clients do not send (several requests at once).
enum RawHTTPExchange {
    static func send(_ request: String, port: Int) async throws -> String {
        let connection = try await RawConnection.connect(port: port)
        try await connection.send(request)
        return try await connection.textWhenClosed()
    }
}
