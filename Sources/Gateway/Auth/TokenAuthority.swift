import Broker
import Foundation
import JWTKit

/// Verifies (and, for `switchboard token` and the demo, issues) HS256 tokens signed with the
/// gateway's secret.
///
/// The secret must be at least 32 bytes: RFC 7518 §3.2 requires an HS256 key at least as long
/// as the hash output, and a shorter one is refused here with a clear message rather than
/// left to jwt-kit's debug assertion.
public struct TokenAuthority: Sendable {
    /// The shortest secret accepted, in bytes.
    public static let minimumSecretLength = 32

    /// Why a secret was refused.
    public struct WeakSecretError: Error, CustomStringConvertible {
        public let length: Int
        public init(length: Int) { self.length = length }
        public var description: String {
            "JWT secret is \(length) bytes; HS256 needs at least \(TokenAuthority.minimumSecretLength) "
                + "(RFC 7518 §3.2: the key must be at least as long as the hash output)"
        }
    }

    private let keys: JWTKeyCollection

    /// - Throws: ``WeakSecretError`` when `secret` is shorter than 32 bytes.
    public init(secret: String) async throws {
        let length = secret.utf8.count
        guard length >= Self.minimumSecretLength else { throw WeakSecretError(length: length) }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    /// The user a token speaks for.
    ///
    /// Accepts the raw token, `Bearer <token>`, and either of them URL-encoded (a space as
    /// `%20` or, as forms and `URLSearchParams` write it, `+`).
    /// - Throws: ``GatewayError`` 401 for anything else: no token, garbage, another algorithm
    ///   (including `none`), a wrong key, a tampered token, an expired one, one not valid yet
    ///   (`nbf`), one naming no user or a user id that cannot be served (see
    ///   `JobID.isAcceptable`: it names the user's keys and room), so that every transport
    ///   refuses it at the door rather than serving a connection no job event would reach.
    public func authenticate(_ presented: String?) async throws -> String {
        guard let token = Self.normalize(presented) else { throw GatewayError.unauthorized("missing token") }
        // Each refusal says why: a client (or its developer) can tell a token made with another
        // secret (a restarted memory demo makes a new one) from garbage or an expired token.
        switch Self.header(of: token) {
        case .hs256: break
        case .otherAlgorithm: throw GatewayError.unauthorized("invalid token: not signed with HS256")
        case .unreadable: throw GatewayError.unauthorized("invalid token: not a JWT")
        }
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw GatewayError.unauthorized(error.failedClaim is NotBeforeClaim ? "token not valid yet" : "token expired")
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw GatewayError.unauthorized("invalid token: its signature does not match this server's secret")
        } catch {
            throw GatewayError.unauthorized("invalid token: not a JWT")
        }
        guard let userId = claims.userId else { throw GatewayError.unauthorized("token names no user") }
        guard JobID.isAcceptable(userId) else { throw GatewayError.unauthorized(Self.unusableUserId) }
        return userId
    }

    /// What a token's header says of its signature.
    enum Header { case hs256, otherAlgorithm, unreadable }

    /// Whether the token's header says what it is: `"alg":"HS256"`, and no `crit` (no
    /// extension is implemented here, RFC 7515 §4.1.11). jwt-kit verifies with the one key it
    /// has whatever the header names, so a token signed with HS256 under `"alg":"none"` or
    /// `"HS384"` passed; the original's jsonwebtoken refused those, as a JWS must be.
    static func header(of token: String) -> Header {
        guard let end = token.firstIndex(of: "."), let bytes = Self.base64URLDecoded(token[..<end]),
            case .object(let header)? = try? JSONValue.parse(utf8: bytes)
        else { return .unreadable }
        return header["alg"] == "HS256" && header["crit"] == nil ? .hs256 : .otherAlgorithm
    }

    private static func base64URLDecoded(_ text: Substring) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        return Data(base64Encoded: base64).map { Array($0) }
    }

    /// Why a token's user id is refused.
    public static let unusableUserId = "token's user id is unusable: it must be \(JobID.acceptableShape)"

    /// Signs a token for `userId` (as `publicKey` and `sub`) that expires after `lifetime`.
    /// - Throws: ``GatewayError`` 400 when `userId` could not be served (see ``authenticate(_:)``).
    public func issue(userId: String, lifetime: Duration?) async throws -> String {
        guard JobID.isAcceptable(userId) else {
            throw GatewayError.badRequest(JobError.invalidUser.description)
        }
        // Whole seconds: NumericDate may be fractional, but some clients expect integers.
        return try await issue(userId: userId, lifetime: lifetime, now: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)))
    }

    func issue(userId: String, lifetime: Duration?, now: Date) async throws -> String {
        let expiry = lifetime.map { ExpirationClaim(value: now.addingTimeInterval(Self.seconds($0))) }
        let claims = TokenClaims(publicKey: userId, sub: userId, exp: expiry, iat: IssuedAtClaim(value: now))
        return try await keys.sign(claims)
    }

    /// Strips an optional URL encoding and `Bearer ` prefix; `nil` when nothing is left.
    static func normalize(_ presented: String?) -> String? {
        guard var token = presented?.trimmingCharacters(in: .whitespaces), !token.isEmpty else { return nil }
        if token.contains("%"), let decoded = token.removingPercentEncoding { token = decoded }
        // A JWT has no `+` (base64url): here it is a space, as a query string encodes one.
        if token.contains("+") { token = token.replacingOccurrences(of: "+", with: " ") }
        if token.count >= 7, token.prefix(7).lowercased() == "bearer " {
            token = String(token.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        return token.isEmpty ? nil : token
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
