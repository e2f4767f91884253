// A Switchboard client: creates a job over HTTP and follows it live over the plain WebSocket.
//
//     swift run ClientExample http://127.0.0.1:3001 <token> [amount]
//
// `switchboard serve` prints a demo token at start (`switchboard token --user … --secret …`
// makes one for a gateway on Redis). The WebSocket opens first, so no event is missed; a
// client that reconnects passes `lastEventId` to get what it missed meanwhile.

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation
import HummingbirdWSClient
import Logging

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2, let base = URL(string: arguments[0]) else {
    print("usage: ClientExample <gateway URL, e.g. http://127.0.0.1:3001> <token> [amount]")
    exit(2)
}
// A token copied with its header prefix (`Bearer eyJ…`) would be sent as `Bearer Bearer …`.
var token = arguments[1]
if token.lowercased().hasPrefix("bearer ") {
    token = String(token.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
}
var amount = 1000.0
if arguments.count > 2 {
    // Refuse rather than fall back to 1000: a typo must not create a job the user did not ask for.
    guard let given = Double(arguments[2]), given.isFinite else {
        FileHandle.standardError.write(Data(
            "usage: ClientExample <gateway URL> <token> [amount]: the amount is a number, got '\(arguments[2])'\n".utf8))
        exit(2)
    }
    amount = given
}

/// The gateway's HTTP API, as this user.
struct GatewayAPI: Sendable {
    let base: URL
    let token: String

    /// `POST /api/v1/agent/rebalance` with the payload; returns the new job's id.
    func createJob(amount: Double) async throws -> String {
        var request = URLRequest(url: base.appendingPathComponent("api/v1/agent/rebalance"))
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: ["amount": amount])
        let (body, response) = try await URLSession.shared.data(for: request)
        let answer = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        guard (response as? HTTPURLResponse)?.statusCode == 201, let jobId = answer?["jobId"] as? String else {
            throw ClientError(message: "job not created: \(String(decoding: body, as: UTF8.self))")
        }
        return jobId
    }
}

struct ClientError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

var components = URLComponents(url: base, resolvingAgainstBaseURL: false)!
components.scheme = base.scheme == "https" ? "wss" : "ws"
components.path = "/ws"
components.queryItems = [URLQueryItem(name: "token", value: token)]
let logger = Logger(label: "client-example")
let api = GatewayAPI(base: base, token: token)

/// Says what went wrong in a line, without a crash report, and exits 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}

do {
    try await follow()
} catch let error as ClientError {
    fail(error.message)
} catch let error as WebSocketClientError {
    // The gateway refuses the upgrade of a bad or expired token (401) before any frame.
    fail("the WebSocket at \(base) was refused (\(error)): is the token valid? A memory-backed "
        + "`switchboard serve` prints a new one at each start.")
} catch {
    fail("could not reach the gateway at \(base): \(error)")
}

/// Opens the WebSocket, creates a job once connected, and prints its events until it ends.
func follow() async throws {
    try await WebSocketClient.connect(url: components.string!, logger: logger) { inbound, _, _ in
        var frames = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
        var jobId: String?
        // Prints a hint if the job gets no status after `created`; cancelled by the next one.
        var hint: Task<Void, Never>?
        defer { hint?.cancel() }
        while let message = try await frames.next() {
            guard case .text(let text) = message,
                let frame = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                let type = frame["type"] as? String
            else { continue }
            let payload = frame["payload"] as? [String: Any] ?? [:]
            if type == "connected" {
                // Connected as the token's user: now create the job.
                print("connected as \(payload["userId"] ?? "?")")
                jobId = try await api.createJob(amount: amount)
                print("created job \(jobId!)")
                hint = Task {
                    // Nothing takes jobs without an agent; the client would wait silently forever.
                    guard (try? await Task.sleep(for: .seconds(10))) != nil else { return }
                    FileHandle.standardError.write(Data(("no status yet after 10 s: is an agent running? "
                        + "(`switchboard serve` without --redis runs one; with --redis, start `switchboard agent`)"
                        + " Still waiting.\n").utf8))
                }
                continue
            }
            // Events of this user's other jobs (another tab, another client) arrive too.
            guard let jobId, payload["jobId"] as? String == jobId else { continue }
            if !type.hasSuffix(":created") { hint?.cancel() }
            print("\(type) (eventId \(frame["eventId"] ?? "-")): \(text)")
            // Returning closes the WebSocket.
            if type.hasSuffix(":done") || type.hasSuffix(":error") { return }
        }
    }
}
