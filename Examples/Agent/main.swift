// A Switchboard agent running your own work, against Redis.
//
//     swift run AgentExample redis://127.0.0.1:6379
//
// It takes `rebalance` jobs reliably (BLMOVE into the processing list, a lease renewed while a
// job runs, a reaper that puts back what a dead agent held), publishes `processing`, then
// `done` with your handler's result or `error`, and retries transient failures with backoff.
// Jobs come from a gateway (`switchboard serve --redis …`, POST /api/v1/agent/rebalance; the
// ClientExample does that) or from anything that writes a record and LPUSHes its id.
// Ctrl-C or SIGTERM: it stops taking jobs, finishes the ones in flight, and exits.

import Broker
import Foundation
import Logging
import RedisBackend
import ServiceLifecycle
import UnixSignals

/// Your work. Here: a quote of the amount in another currency.
struct QuoteHandler: JobHandler {
    func handle(_ job: JobRecord) async throws -> JSONValue {
        // Bad input: retrying cannot help, so the job ends in `error` at once.
        guard let amount = job.payload["amount"]?.doubleValue, amount > 0 else {
            throw JobFailure(.permanent, "Invalid amount", details: "amount must be a positive number")
        }
        // Anything else thrown counts as transient: the agent retries it with backoff. Delivery
        // is at least once (a job whose agent died runs again), so key side effects by jobId.
        let rate = 0.92
        return ["jobId": .string(job.jobId), "amount": .number(amount), "currency": "EUR", "quote": .number(amount * rate)]
    }
}

/// Says what went wrong in a line, without a crash report, and exits 1 (as ClientExample does).
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}

let url = CommandLine.arguments.dropFirst().first ?? "redis://127.0.0.1:6379"
var logger = Logger(label: "agent-example")
logger.logLevel = .info
let broker: RedisBroker
do throws(BrokerError) {
    // A malformed URL is refused here. A Redis that is down is not: the broker retries.
    broker = try RedisBroker(url: url, logger: logger)
} catch {
    fail("\(error.message); usage: AgentExample [redis://[user:password@]host:port[/db]]")
}
let agent = Agent(
    broker: broker, handler: QuoteHandler(),
    configuration: AgentConfiguration(concurrency: 4, visibilityTimeout: .seconds(30)), logger: logger)
// Services stop in reverse order: the agent drains first, then the broker closes its connections.
let services = ServiceGroup(
    configuration: ServiceGroupConfiguration(
        services: [.init(service: broker), .init(service: agent)],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
do {
    try await services.run()
} catch {
    fail("\(error)")
}
