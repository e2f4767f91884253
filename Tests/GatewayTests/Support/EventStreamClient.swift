import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One Server-Sent Events record as a client sees it.
struct SSERecord: Sendable, Equatable {
    var id: String?
    var event: String
    var data: String
}

/// A minimal streaming HTTP/1.1 client for `text/event-stream`: it reads the body as it
/// arrives (the test framework's client waits for the whole response, which an event stream
/// never ends) and parses records per the WHATWG rules that matter here.
actor EventStreamClient {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    private let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    private var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    /// The body read so far and not yet parsed into records.
    private var pending = ""

    /// Connects and sends `GET path` with `headers`; returns once the response head arrived.
    static func connect(port: Int, path: String, headers: [(String, String)] = []) async throws -> EventStreamClient {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        try await channel.outbound.write(.head(head))
        try await channel.outbound.write(.end(nil))
        var parts = channel.inbound.makeAsyncIterator()
        guard case .head(let response) = try await parts.next() else { throw EventStreamError.noHead }
        return EventStreamClient(channel: channel, parts: parts, status: response.status, headers: response.headers)
    }

    private init(
        channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        status: HTTPResponseStatus, headers: HTTPHeaders
    ) {
        self.channel = channel
        self.parts = parts
        self.status = status
        self.headers = headers
    }

    /// The next record (comments such as heartbeats are returned as event `":"`), or `nil`
    /// when the stream ended.
    func next() async throws -> SSERecord? {
        while true {
            if let record = Self.takeRecord(from: &pending) { return record }
            switch try await nextPart() {
            case .body(let buffer):
                pending += String(buffer: buffer)
            case .end, nil:
                return nil
            case .head:
                continue
            }
        }
    }

    /// The next record that is not a comment.
    func nextEvent() async throws -> SSERecord? {
        while let record = try await next() {
            if record.event != ":" { return record }
        }
        return nil
    }

    /// The whole body until the server ends it (for error responses).
    func readToEnd() async throws -> String {
        var text = pending
        while case .body(let buffer) = try await nextPart() { text += String(buffer: buffer) }
        return text
    }

    /// One reader at a time: the iterator is copied out across the suspension and put back.
    private func nextPart() async throws -> HTTPClientResponsePart? {
        var iterator = parts
        let part = try await iterator.next(isolation: self)
        parts = iterator
        return part
    }

    func close() async {
        try? await channel.channel.close()
    }

    /// The next complete record in `text`, removed from it. Blocks without data (a `retry:`
    /// alone, say) dispatch nothing, as in a browser, and are skipped.
    private static func takeRecord(from text: inout String) -> SSERecord? {
        while let record = takeBlock(from: &text) {
            if let record { return record }
        }
        return nil
    }

    private static func takeBlock(from text: inout String) -> SSERecord?? {
        guard let end = text.range(of: "\n\n") else { return nil }
        let block = text[..<end.lowerBound]
        text.removeSubrange(..<end.upperBound)
        var record = SSERecord(id: nil, event: "message", data: "")
        var dataLines: [Substring] = []
        var onlyComments = true
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") { continue }
            onlyComments = false
            let (field, value) = line.firstIndex(of: ":").map { (line[..<$0], line[line.index(after: $0)...]) }
                ?? (line, "")
            let trimmed = value.hasPrefix(" ") ? value.dropFirst() : value
            switch field {
            case "id": record.id = String(trimmed)
            case "event": record.event = String(trimmed)
            case "data": dataLines.append(trimmed)
            default: break
            }
        }
        if onlyComments { return SSERecord(id: nil, event: ":", data: String(block)) }
        if dataLines.isEmpty { return .some(nil) }
        record.data = dataLines.joined(separator: "\n")
        return record
    }
}

enum EventStreamError: Error { case noHead }
