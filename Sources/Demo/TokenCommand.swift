import ArgumentParser
import Broker
import Foundation
import Gateway

/// `switchboard token --user KEY [--secret S] [--ttl 1h]`: prints a token for trying things.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print an HS256 token for a user, signed with the gateway's secret."
    )

    @Option(name: .long, help: "The user id (becomes the publicKey and sub claims).")
    var user: String

    @Option(name: .long, help: "The signing secret (at least 32 bytes). Default: env JWT_SECRET.")
    var secret: String?

    @Option(name: .long, parsing: .unconditional, help: "Lifetime, e.g. 90s, 15m, 1h, 7d; 0 for a token that never expires.")
    var ttl: String = "1h"

    /// `--secret`, else env `JWT_SECRET` (empty counts as unset).
    private var signingSecret: String? {
        (secret ?? ProcessInfo.processInfo.environment["JWT_SECRET"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    func validate() throws {
        // The gateway refuses a token for any other id (it names the user's keys and room).
        guard JobID.isAcceptable(user) else {
            throw ValidationError("--user must be \(JobID.acceptableShape)")
        }
        guard let signingSecret else { throw ValidationError("no secret: pass --secret or set JWT_SECRET") }
        let length = signingSecret.utf8.count
        guard length >= TokenAuthority.minimumSecretLength else {
            throw ValidationError(TokenAuthority.WeakSecretError(length: length).description)
        }
        guard DurationText.parse(ttl) != nil else {
            throw ValidationError("--ttl \(ttl): expected a number with an optional unit s, m, h or d")
        }
    }

    func run() async throws {
        // Checked in validate().
        guard let signingSecret, let lifetime = DurationText.parse(ttl) else { throw ValidationError("no secret or --ttl") }
        let authority = try await TokenAuthority(secret: signingSecret)
        print(try await authority.issue(userId: user, lifetime: lifetime == .zero ? nil : lifetime))
    }
}
