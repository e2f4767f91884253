import Broker
import Foundation
import RedisBackend
import ServiceLifecycle

/// Stops `serve` or `agent` at start when Redis refuses its settings (wrong password or user,
/// a database the server does not have) before any connection was opened: retrying those
/// would fail the same way for ever, behind a 503 and a stream of warnings. A Redis that is
/// down at start is waited for, as before; once connected, the check is over, and later
/// refusals (a password rotated under a running process) are retried like outages.
struct RedisStartupCheck: Service {
    let broker: RedisBroker
    let url: String

    /// The check as a member of a service group: its failure shuts the group down (the process
    /// exits with its message).
    var groupMember: ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: self, failureTerminationBehavior: .gracefullyShutdownGroup)
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await waitUntilConnected() }
        } catch is CancellationError {
            return  // shut down before Redis answered
        }
        // Done; it stays until its turn in the shutdown order, since a service group takes a
        // service that ends on its own during shutdown for a failure.
        try? await gracefulShutdown()
    }

    /// Returns once connected; throws at a refusal. Polled: the broker's own connection
    /// attempts (with their backoff) are what is watched.
    private func waitUntilConnected() async throws {
        while !broker.hasConnected {
            if let refusal = broker.settingsRefusal {
                throw StartupError(
                    "Redis at \(RedisConfiguration.redacted(url)) refused the settings: \(refusal.message.trimmingCharacters(in: [".", " "])). "
                        + "Check the user, password and database in the URL (or REDIS_URL).")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
