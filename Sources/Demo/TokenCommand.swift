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

    func validate() throws {
        // The gateway refuses a token for any other id (it names the user's keys and room).
        guard JobID.isAcceptable(user) else {
            throw ValidationError("--user must be \(JobID.acceptableShape)")
        }
    }

    func run() async throws {
        guard let secret = secret ?? ProcessInfo.processInfo.environment["JWT_SECRET"], !secret.isEmpty else {
            throw ValidationError("no secret: pass --secret or set JWT_SECRET")
        }
        guard let lifetime = DurationText.parse(ttl) else {
            throw ValidationError("--ttl \(ttl): expected a number with an optional unit s, m, h or d")
        }
        let authority: TokenAuthority
        do {
            authority = try await TokenAuthority(secret: secret)
        } catch let error as TokenAuthority.WeakSecretError {
            throw StartupError(error.description)
        }
        print(try await authority.issue(userId: user, lifetime: lifetime == .zero ? nil : lifetime))
    }
}
