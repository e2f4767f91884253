public import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// An error the gateway answers with: an HTTP status and a message, sent as
/// `{"error": "<message>"}` (SPEC §2). Every error reaches the client through
/// ``JSONErrorMiddleware``, the one place errors become responses.
public struct GatewayError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func unauthorized(_ message: String) -> Self { .init(.unauthorized, message) }
    public static func badRequest(_ message: String) -> Self { .init(.badRequest, message) }
    public static func notFound(_ message: String) -> Self { .init(.notFound, message) }
    public static func forbidden(_ message: String) -> Self { .init(.forbidden, message) }
    public static func unavailable(_ message: String) -> Self { .init(.serviceUnavailable, message) }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Self.jsonResponse(status: status, message: message)
    }

    /// `{"error": message}`, the body of every error answer.
    var jsonBody: ByteBuffer { Self.jsonBody(message) }

    static func jsonBody(_ message: String) -> ByteBuffer {
        ByteBuffer(string: #"{"error":"# + JSONText.quoted(message) + "}")
    }

    /// `{"error": message}` with `status`.
    static func jsonResponse(status: HTTPResponse.Status, message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: jsonBody(message))
        )
    }
}

/// Turns every error thrown below it into a JSON error response, so no handler formats errors
/// itself and no client ever sees an empty or HTML error body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as GatewayError {
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            var response = GatewayError.jsonResponse(
                status: error.status, message: error.body ?? Self.message(for: error.status))
            response.headers.append(contentsOf: error.headers)
            return response
        } catch let error as any HTTPResponseError {
            return GatewayError.jsonResponse(status: error.status, message: Self.message(for: error.status))
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return GatewayError.jsonResponse(status: .internalServerError, message: "internal error")
        }
    }

    private static func message(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not found"
        case .contentTooLarge: "request body larger than the limit"
        case .methodNotAllowed: "method not allowed"
        default: status.reasonPhrase.lowercased()
        }
    }
}
