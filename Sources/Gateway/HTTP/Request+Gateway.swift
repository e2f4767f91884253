import Foundation
import HTTPTypes
public import Broker
public import Hummingbird

extension Request {
    /// The request body as a JSON object.
    ///
    /// A body may be compressed (`Content-Encoding: gzip` or `deflate`), as the original's body
    /// parser allowed; `limit` then applies to it inflated.
    ///
    /// - Throws: ``GatewayError`` 413 when the body exceeds `limit` (checked against
    ///   `Content-Length` first, so an oversized upload is refused without being read), 400 when
    ///   it is not JSON, not an object, or not valid data of its coding, 415 for another coding.
    public mutating func jsonObject(limit: Int) async throws -> [String: JSONValue] {
        guard let coding = ContentCoding(header: headers[.contentEncoding]) else {
            let name = headers[.contentEncoding]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            throw GatewayError(
                .unsupportedMediaType, "unsupported content encoding \"\(name)\"; send it as gzip, deflate or uncompressed")
        }
        if let declared = headers[.contentLength].flatMap(Int.init), declared > limit {
            throw GatewayError(.contentTooLarge, "request body larger than \(limit) bytes")
        }
        var buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw GatewayError(.contentTooLarge, "request body larger than \(limit) bytes")
        }
        if coding != .identity {
            do {
                buffer = ByteBuffer(bytes: try BodyInflater.inflate(buffer.readableBytesView, coding: coding, limit: limit))
            } catch .tooLarge {
                throw GatewayError(.contentTooLarge, "request body larger than \(limit) bytes once inflated")
            } catch .malformed(let reason) {
                throw GatewayError.badRequest("body is not valid \(coding) data: \(reason)")
            }
        }
        var bytes = buffer.readableBytesView[...]
        // A UTF-8 byte order mark is skipped, as Express's body parser did for the original.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        guard !bytes.isEmpty else { throw GatewayError.badRequest("body must be a JSON object") }
        let value: JSONValue
        do {
            // The parser every other JSON input goes through: a duplicated member keeps its last
            // value, as JSON.parse does (Foundation's decoder kept the first).
            value = try JSONValue.parse(utf8: bytes)
        } catch {
            // Where and why (e.g. "invalid JSON at byte 130: nesting too deep"), as JSON.parse says.
            throw GatewayError.badRequest(error.description)
        }
        guard case .object(let members) = value else { throw GatewayError.badRequest("body must be a JSON object") }
        return members
    }

    /// The token presented with the request: the `Authorization` header, else `?token=`. A
    /// header of another scheme (`Basic …`, which a browser adds by itself behind HTTP basic
    /// auth) does not hide `?token=`: it is used only when there is no query token.
    public var presentedToken: String? {
        let header = headers[.authorization].flatMap { $0.isEmpty ? nil : $0 }
        if let header, !Self.namesAnotherScheme(header) { return header }
        return uri.queryParameters["token"].map(String.init) ?? header
    }

    /// Whether an `Authorization` value is `<scheme> <credentials>` with a scheme other than
    /// `Bearer` (a bare token has no space: JWTs never contain one).
    static func namesAnotherScheme(_ header: String) -> Bool {
        let trimmed = header.drop { $0 == " " }
        guard let space = trimmed.firstIndex(of: " ") else { return false }
        return trimmed[..<space].lowercased() != "bearer"
    }

    /// The last event id a reconnecting client saw: `Last-Event-ID`, else `?lastEventId=`.
    public var lastEventId: String? {
        if let header = headers[.lastEventID], !header.isEmpty { return header }
        return uri.queryParameters["lastEventId"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
}
