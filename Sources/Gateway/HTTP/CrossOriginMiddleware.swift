import HTTPTypes
import Hummingbird

/// CORS for browsers on another origin (`--cors-origin`), answering as the original's Express
/// `cors` middleware did with its defaults.
///
/// A preflight is allowed whatever request headers it announces (they are reflected in
/// `Access-Control-Allow-Headers`): browser apps add their own (`sentry-trace`, `baggage`,
/// `traceparent`, `x-request-id`), and a fixed list made the browser refuse those apps'
/// requests before they were sent. Headers the gateway does not read change nothing.
///
/// For one configured origin (not `*`), credentialed requests are allowed too: a Socket.IO
/// client behind a load balancer with cookie-based sticky sessions sets `withCredentials`, and
/// the browser refuses its polling requests without `Access-Control-Allow-Credentials`. The
/// gateway authenticates with bearer tokens, never cookies, so this grants nothing more.
struct CrossOriginMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The `Access-Control-Allow-Origin` value: one origin, or `*`.
    let allowOrigin: String

    /// Announced when a preflight names no headers.
    private static var defaultAllowHeaders: String { "authorization, content-type, last-event-id" }
    private static var allowMethods: String { "GET, HEAD, POST, OPTIONS" }
    /// Seconds a browser may keep a preflight's answer (Chromium caps it at 7,200).
    private static var maxAge: String { "600" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.headers[.origin] != nil else { return try await next(request, context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [
                .accessControlAllowOrigin: allowOrigin,
                .accessControlAllowMethods: Self.allowMethods,
                .accessControlMaxAge: Self.maxAge,
            ]
            if let requested = request.headers[.accessControlRequestHeaders], !requested.isEmpty {
                headers[.accessControlAllowHeaders] = requested
                headers[values: .vary].append("Access-Control-Request-Headers")
            } else {
                headers[.accessControlAllowHeaders] = Self.defaultAllowHeaders
            }
            for (name, value) in CrossOrigin.credentialHeaders(allowing: allowOrigin) {
                headers.append(HTTPField(name: name, value: value))
            }
            return Response(status: .noContent, headers: headers)
        }
        // Errors are responses by now (JSONErrorMiddleware runs inside this one), so they get
        // the headers too and a browser can read why a request failed.
        var response = try await next(request, context)
        response.headers[.accessControlAllowOrigin] = allowOrigin
        for (name, value) in CrossOrigin.credentialHeaders(allowing: allowOrigin) {
            response.headers.append(HTTPField(name: name, value: value))
        }
        return response
    }
}

/// What every answer to a cross-origin request carries besides `Access-Control-Allow-Origin`,
/// whoever writes it (``CrossOriginMiddleware``, an event stream's own head).
enum CrossOrigin {
    /// For one configured origin: credentials allowed, and `Vary: Origin` for caches; nothing
    /// for `*` (browsers refuse credentials with it).
    static func credentialHeaders(allowing allowOrigin: String) -> [(name: HTTPField.Name, value: String)] {
        allowOrigin == "*" ? [] : [(.accessControlAllowCredentials, "true"), (.vary, "Origin")]
    }
}
