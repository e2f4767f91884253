import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers `Expect: 100-continue` (RFC 9110 §10.1.1) with an interim `100 Continue` as the
/// request head passes, as Node's HTTP server did for the original: a client that asks waits
/// for it before sending the body (curl for one second, then sends it anyway; others longer).
/// Any other expectation is answered `417 Expectation Failed` and the connection closed.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    /// The rest of a refused request is not handed on.
    private var discarding = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            discarding = false
            guard let expectation = request.headerFields[.expect] else { return context.fireChannelRead(data) }
            if expectation.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
                return context.fireChannelRead(data)
            }
            discarding = true
            let body = GatewayError(.expectationFailed, "unsupported expectation").jsonBody
            let head = HTTPResponse(
                status: .expectationFailed,
                headerFields: [
                    .contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes),
                    .connection: "close",
                ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlushThenClose(wrapOutboundOut(.end(nil)))
        case .body, .end:
            if !discarding { context.fireChannelRead(data) }
        }
    }
}
