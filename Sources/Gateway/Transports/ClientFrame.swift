import Broker

/// A frame a plain-WebSocket client sends (SPEC §3.2), parsed without I/O so every malformed
/// shape can be tested directly.
public enum ClientFrame: Sendable, Equatable {
    /// `{"type":"ping"}`: answered with `{"type":"pong","timestamp":<ms>}`.
    case ping
    /// `{"type":"subscribe","jobId":"..."}`: follow one of the user's own jobs.
    case subscribe(jobId: String)

    /// Why a frame was refused; the text goes back to the client in an `error` frame.
    public struct Malformed: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Parses a text frame.
    /// - Throws: ``Malformed`` for anything but a JSON object of a known `type` with its fields.
    public static func parse(_ text: String) throws(Malformed) -> ClientFrame {
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: text.utf8)
        } catch {
            throw Malformed("frame is not valid JSON")
        }
        guard case .object(let members) = value else { throw Malformed("frame must be a JSON object") }
        guard let type = members["type"]?.stringValue else { throw Malformed("frame has no string \"type\"") }
        switch type {
        case "ping":
            return .ping
        case "subscribe":
            guard let jobId = members["jobId"]?.stringValue, !jobId.isEmpty else {
                throw Malformed("subscribe needs a string \"jobId\"")
            }
            return .subscribe(jobId: jobId)
        default:
            throw Malformed("unknown frame type \"\(type)\"")
        }
    }
}
